"""Wire protocol: frames and messages <-> bytes. Pure, no I/O; see docs/protocol.md."""

from firmware_bridge.protocol.codes import (
    PROTOCOL_VERSION,
    FaultCode,
    Field,
    MsgType,
    NakCode,
    StatusFlag,
)
from firmware_bridge.protocol.framing import (
    MAX_PAYLOAD_BYTES,
    FrameError,
    cobs_decode,
    cobs_encode,
    decode_frame,
    encode_frame,
)
from firmware_bridge.protocol.messages import (
    MAX_CHANNELS,
    MESSAGE_CLASSES,
    Ack,
    Arm,
    Boot,
    CameraTrigger,
    CameraTriggered,
    Configure,
    Data,
    Disarm,
    Fault,
    GetStatus,
    Heartbeat,
    Hello,
    HelloReply,
    LedFlashed,
    LedPulse,
    Log,
    Message,
    Nak,
    ResetFault,
    StartStream,
    Status,
    StimDelivered,
    Stimulate,
    StopStream,
    TestSignal,
    parse_payload,
)
from firmware_bridge.protocol.stream import (
    Decoded,
    LinkCounters,
    StreamAnomaly,
    StreamDecoder,
)


def encode_message(message: Message, seq: int) -> bytes:
    """Return the wire bytes (frame with delimiter) of ``message`` with ``seq``.

    >>> from firmware_bridge import StimPulse
    >>> command = Stimulate.from_pulse(StimPulse(amplitude_vpp=4.0, duration_s=3e-3))
    >>> command.amplitude_mvpp, command.duration_us  # wire units
    (4000, 3000)
    >>> wire = encode_message(command, seq=1)
    >>> msg_type, seq, payload = decode_frame(wire[:-1])
    >>> parse_payload(msg_type, payload) == command
    True
    """
    return encode_frame(message.TYPE, seq, message.pack())


__all__ = [
    "MAX_CHANNELS",
    "MAX_PAYLOAD_BYTES",
    "MESSAGE_CLASSES",
    "PROTOCOL_VERSION",
    "Ack",
    "Arm",
    "Boot",
    "CameraTrigger",
    "CameraTriggered",
    "Configure",
    "Data",
    "Decoded",
    "Disarm",
    "Fault",
    "FaultCode",
    "Field",
    "FrameError",
    "GetStatus",
    "Heartbeat",
    "Hello",
    "HelloReply",
    "LedFlashed",
    "LedPulse",
    "LinkCounters",
    "Log",
    "Message",
    "MsgType",
    "Nak",
    "NakCode",
    "ResetFault",
    "StartStream",
    "Status",
    "StatusFlag",
    "StimDelivered",
    "Stimulate",
    "StopStream",
    "StreamAnomaly",
    "StreamDecoder",
    "TestSignal",
    "cobs_decode",
    "cobs_encode",
    "decode_frame",
    "encode_frame",
    "encode_message",
    "parse_payload",
]
