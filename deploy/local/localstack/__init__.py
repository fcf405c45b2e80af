"""The no-Docker local stack: real Kafka, PostgreSQL, a Confluent-API schema registry and Jaeger.

Same ports and environment variables as docker-compose.yml. Run `python -m localstack --help`
(with deploy/local on PYTHONPATH; the Makefile does that).
"""
