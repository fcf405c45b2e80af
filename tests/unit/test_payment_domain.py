from decimal import Decimal
from uuid import uuid4

import pytest

from services.payment.domain import Customer, PaymentStatus, charge, payment_id_for, refund


def test_a_charge_takes_the_amount_from_the_balance():
    order = uuid4()
    customer, payment = charge(Customer("C", Decimal("50.00")), "C", order, Decimal("19.99"), "EUR")
    assert customer.balance == Decimal("30.01")
    assert payment.status is PaymentStatus.CHARGED and payment.amount == Decimal("19.99")
    assert payment.payment_id == payment_id_for(order), "one payment id per order, derivable"


@pytest.mark.parametrize(
    ("customer", "reason"),
    [
        (None, "unknown customer"),
        (Customer("C", Decimal("100"), blocked=True), "customer is blocked"),
        (Customer("C", Decimal("19.98")), "insufficient funds"),
    ],
)
def test_a_refused_charge_takes_nothing_and_says_why(customer, reason):
    after, payment = charge(customer, "C", uuid4(), Decimal("19.99"), "EUR")
    assert after == customer
    assert payment.status is PaymentStatus.FAILED and payment.reason == reason


def test_a_refund_gives_back_exactly_what_was_charged_and_only_once():
    customer, payment = charge(Customer("C", Decimal("100.00")), "C", uuid4(), Decimal("33.33"), "EUR")
    customer, refunded = refund(customer, payment, "stock")
    assert customer.balance == Decimal("100.00")
    assert refunded.status is PaymentStatus.REFUNDED
    with pytest.raises(ValueError, match="not charged"):
        refund(customer, refunded, "again")
