import os
from uuid import UUID, uuid4

from services.shipping.domain import Consignment, ShippingState, dispatch, tracking_number_for


def test_a_consignment_is_ready_with_both_its_address_and_its_reservation():
    order = uuid4()
    assert not Consignment(order, country="DE").ready
    assert not Consignment(order, reserved=True).ready
    assert Consignment(order, country="DE", reserved=True).ready


def test_a_served_country_gets_a_shipment_with_a_tracking_number():
    order = uuid4()
    shipped = dispatch(Consignment(order, country="DE", reserved=True), {"DE", "FR"})
    assert shipped.state is ShippingState.CREATED
    assert shipped.tracking_number == tracking_number_for(order) and shipped.shipment_id is not None
    assert dispatch(Consignment(order, country="DE", reserved=True), {"DE"}) == shipped, "deterministic"


def test_a_country_not_served_fails_the_shipment():
    failed = dispatch(Consignment(uuid4(), country="US", reserved=True), {"DE"})
    assert failed.state is ShippingState.FAILED and failed.reason == "we do not ship to US"
    assert failed.shipment_id is None


def test_tracking_numbers_of_orders_placed_in_the_same_millisecond_differ():
    # UUIDv7 ids of one millisecond share their first 48 bits: the tracking number must use them all.
    millisecond = (1_790_000_000_000).to_bytes(6, "big")
    first, second = (UUID(bytes=millisecond + os.urandom(10)) for _ in range(2))
    assert tracking_number_for(first) != tracking_number_for(second)
    assert tracking_number_for(first) == tracking_number_for(first), "the same order, the same number"
