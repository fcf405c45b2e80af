"""Inventory: reserves the stock of paid orders, releases it when shipping fails, ships it out."""
