"""torch.save's zip layout with Python's own pickler, without torch installed.

The pickled stream is what torch.save(state_dict) writes (protocol 2, persistent ids
('storage', torch.<Type>Storage, key, 'cpu', numel), torch._utils._rebuild_tensor_v2 with an
OrderedDict of backward hooks, the state_dict's _metadata attribute), produced by the real
pickle module through stand-ins registered as the torch modules.

  fake_torch_save.py make OUT          writes a state_dict with known content (see below)
  fake_torch_save.py roundtrip IN OUT  reads IN as torch.load would, writes it again to OUT
"""
import collections
import pickle
import struct
import sys
import types
import zipfile

torch_mod = types.ModuleType("torch")
utils_mod = types.ModuleType("torch._utils")
sys.modules["torch"] = torch_mod
sys.modules["torch._utils"] = utils_mod
FORMATS = {"FloatStorage": "f", "DoubleStorage": "d", "LongStorage": "q", "IntStorage": "i"}


class Storage:
    def __init__(self, kind, values):
        self.kind, self.values = kind, list(values)


def _storage_class(name):
    cls = type(name, (), {"__module__": "torch"})
    setattr(torch_mod, name, cls)
    return cls


STORAGE_CLASSES = {name: _storage_class(name) for name in FORMATS}


class Tensor:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def __reduce_ex__(self, protocol):
        return (_rebuild_tensor_v2,
                (self.storage, self.offset, self.size, self.stride, False, collections.OrderedDict()))


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks, *rest):
    return Tensor(storage, offset, size, stride)


_rebuild_tensor_v2.__module__ = "torch._utils"
utils_mod._rebuild_tensor_v2 = _rebuild_tensor_v2


def save(path, state):
    keys = {}

    def persistent_id(obj):
        if isinstance(obj, Storage):
            key = keys.setdefault(id(obj), (str(len(keys)), obj))[0]
            return ("storage", STORAGE_CLASSES[obj.kind], key, "cpu", len(obj.values))
        return None

    class Pickler(pickle.Pickler):
        pass

    buf = __import__("io").BytesIO()
    pickler = Pickler(buf, protocol=2)
    pickler.persistent_id = persistent_id
    pickler.dump(state)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", buf.getvalue())
        z.writestr("archive/byteorder", "little")
        for key, storage in sorted(keys.values()):
            fmt = "<%d%s" % (len(storage.values), FORMATS[storage.kind])
            z.writestr("archive/data/" + key, struct.pack(fmt, *storage.values))
        z.writestr("archive/version", "3\n")


def load(path):
    with zipfile.ZipFile(path) as z:
        prefix = z.namelist()[0].split("/")[0] + "/"
        storages = {}

        class Unpickler(pickle.Unpickler):
            def persistent_load(self, pid):
                tag, cls, key, location, numel = pid
                assert tag == "storage" and location == "cpu", pid
                if key not in storages:
                    raw = z.read(prefix + "data/" + key)
                    fmt = "<%d%s" % (numel, FORMATS[cls.__name__])
                    storages[key] = Storage(cls.__name__, struct.unpack(fmt, raw))
                return storages[key]

            def find_class(self, module, name):
                allowed = {("collections", "OrderedDict"), ("torch._utils", "_rebuild_tensor_v2")}
                allowed |= {("torch", n) for n in FORMATS}
                if (module, name) not in allowed:
                    raise pickle.UnpicklingError("unexpected global %s.%s" % (module, name))
                return super().find_class(module, name)

        return Unpickler(__import__("io").BytesIO(z.read(prefix + "data.pkl"))).load()


def make(path):
    # weight [2, 3] = 0..5; "view" shares its storage (offset 2, size [2], stride [3]);
    # "t" is weight transposed (strides (1, 3)); a float64, an int64 scalar, 300 keys' worth of
    # SETITEMS batching is left to the pickler (1000 per batch) with "pad.<i>" entries.
    state = collections.OrderedDict()
    shared = Storage("FloatStorage", [float(i) for i in range(6)])
    state["layer.weight"] = Tensor(shared, 0, (2, 3), (3, 1))
    state["layer.view"] = Tensor(shared, 2, (2,), (3,))
    state["layer.t"] = Tensor(shared, 0, (3, 2), (1, 3))
    state["double"] = Tensor(Storage("DoubleStorage", [0.1, -2.5]), 0, (2,), (1,))
    state["bn.num_batches_tracked"] = Tensor(Storage("LongStorage", [1234567890123]), 0, (), ())
    for i in range(1100):
        state["pad.%d" % i] = Tensor(Storage("IntStorage", [i]), 0, (1,), (1,))
    state._metadata = collections.OrderedDict([("", {"version": 1}), ("bn", {"version": 2})])
    save(path, state)


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2])
    else:
        save(sys.argv[3], load(sys.argv[2]))
