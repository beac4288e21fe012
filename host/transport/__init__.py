"""The serial link to a board: framing, retransmission, exactly-once delivery, fault injection."""
