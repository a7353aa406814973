"""A small pure-Python safetensors writer and reader (FORMATS.md §1), standing in for
safetensors.torch in the tests: what a trainer would hand lorakit and read back."""
import json
import struct

ELEMENT_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}
FLOAT_FORMATS = {"F64": "d", "F32": "f", "F16": "e"}


def _numel(shape):
    count = 1
    for extent in shape:
        count *= extent
    return count


def encode_floats(dtype, values):
    """Little-endian bytes of `values` in F64/F32/F16 (BF16: F32 truncated to its top half)."""
    if dtype == "BF16":
        return b"".join(struct.pack("<f", v)[2:] for v in values)
    return struct.pack("<%d%s" % (len(values), FLOAT_FORMATS[dtype]), *values)


def decode_floats(dtype, raw):
    if dtype == "BF16":
        return [struct.unpack("<f", b"\0\0" + raw[i:i + 2])[0] for i in range(0, len(raw), 2)]
    count = len(raw) // ELEMENT_BYTES[dtype]
    return list(struct.unpack("<%d%s" % (count, FLOAT_FORMATS[dtype]), raw))


def save(tensors, metadata=None):
    """tensors: {name: (dtype, shape, raw bytes)} → the file's bytes, tensors in the given order."""
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    offset = 0
    for name, (dtype, shape, raw) in tensors.items():
        assert len(raw) == _numel(shape) * ELEMENT_BYTES[dtype], name
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(raw for _, _, raw in tensors.values())


def load(data):
    """File bytes → ({name: (dtype, shape, raw bytes)}, metadata or None)."""
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    metadata = header.pop("__metadata__", None)
    start = 8 + length
    tensors = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        assert end - begin == _numel(entry["shape"]) * ELEMENT_BYTES[entry["dtype"]], name
        tensors[name] = (entry["dtype"], entry["shape"], data[start + begin:start + end])
    assert start + max([e["data_offsets"][1] for e in header.values()] or [0]) == len(data)
    return tensors, metadata


def raw_file(header_text, data=b""):
    """A file with exactly this header text (no padding) and data: for malformed inputs."""
    encoded = header_text.encode() if isinstance(header_text, str) else header_text
    return struct.pack("<Q", len(encoded)) + encoded + data
