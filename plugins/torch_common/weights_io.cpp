#include "torch_common/weights_io.hpp"

#include <caffe2/serialize/inline_container.h>
#include <hdf5.h>
#include <torch/types.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <stdexcept>
#include <utility>
#include <variant>

#include "w2p/hdf5_lock.hpp"

namespace w2p::torch_common {
namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::runtime_error(path + ": " + what);
}

// ---- a minimal unpickler for torch.save's data.pkl ----------------------------------------------
// Supports the opcodes pickle protocols 2..4 emit for a dict of tensors, the globals
// collections.OrderedDict, torch._utils._rebuild_tensor_v2 / _rebuild_parameter and the
// torch.<Type>Storage classes, and persistent ids ('storage', type, key, location, numel).

struct PyObj;
using Obj = std::shared_ptr<PyObj>;

struct PyObj {
  enum class Kind { kNone, kBool, kInt, kFloat, kStr, kTuple, kList, kDict, kGlobal, kTensor };
  Kind kind = Kind::kNone;
  int64_t i = 0;
  double f = 0.0;
  std::string s;                          // str, or "module.name" for a global
  std::vector<Obj> items;                 // tuple, list
  std::vector<std::pair<Obj, Obj>> dict;  // dict (insertion order)
  torch::Tensor tensor;                   // tensor or storage (1-D)
};

Obj make(PyObj::Kind kind) {
  auto o = std::make_shared<PyObj>();
  o->kind = kind;
  return o;
}

torch::Dtype storage_dtype(const std::string& global, const std::string& path) {
  static const std::map<std::string, torch::Dtype> kTypes = {
      {"torch.FloatStorage", torch::kFloat32}, {"torch.DoubleStorage", torch::kFloat64},
      {"torch.HalfStorage", torch::kFloat16},  {"torch.BFloat16Storage", torch::kBFloat16},
      {"torch.LongStorage", torch::kInt64},    {"torch.IntStorage", torch::kInt32},
      {"torch.ShortStorage", torch::kInt16},   {"torch.CharStorage", torch::kInt8},
      {"torch.ByteStorage", torch::kUInt8},    {"torch.BoolStorage", torch::kBool}};
  const auto it = kTypes.find(global);
  if (it == kTypes.end()) fail(path, "unsupported storage type '" + global + "'");
  return it->second;
}

class Unpickler {
 public:
  Unpickler(const std::string& path, const char* data, size_t size,
            caffe2::serialize::PyTorchStreamReader& reader)
      : path_(path), p_(data), end_(data + size), reader_(reader) {}

  Obj run() {
    for (;;) {
      const auto op = static_cast<uint8_t>(byte());
      switch (op) {
        case 0x80:
          byte();
          break;  // PROTO
        case 0x95:
          bytes(8);
          break;  // FRAME
        case 0x94:
          memo_[memo_.size()] = top();
          break;  // MEMOIZE
        case '(':
          marks_.push_back(stack_.size());
          break;  // MARK
        case '.':
          return pop();  // STOP
        case 'N':
          stack_.push_back(make(PyObj::Kind::kNone));
          break;
        case 0x88:
        case 0x89: {  // NEWTRUE / NEWFALSE
          auto o = make(PyObj::Kind::kBool);
          o->i = op == 0x88;
          stack_.push_back(o);
          break;
        }
        case 'J':
          push_int(static_cast<int32_t>(le<uint32_t>(4)));
          break;
        case 'K':
          push_int(static_cast<uint8_t>(byte()));
          break;
        case 'M':
          push_int(le<uint16_t>(2));
          break;
        case 0x8a: {  // LONG1
          const auto n = static_cast<uint8_t>(byte());
          if (n > 8) fail(path_, "integer too large in data.pkl");
          uint64_t v = 0;
          const char* b = bytes(n);
          for (int k = n - 1; k >= 0; --k) v = (v << 8) | static_cast<uint8_t>(b[k]);
          if (n > 0 && n < 8 && (static_cast<uint8_t>(b[n - 1]) & 0x80))
            v |= ~uint64_t{0} << (8 * n);
          push_int(static_cast<int64_t>(v));
          break;
        }
        case 'G': {  // BINFLOAT (big-endian)
          const char* b = bytes(8);
          uint64_t v = 0;
          for (int k = 0; k < 8; ++k) v = (v << 8) | static_cast<uint8_t>(b[k]);
          auto o = make(PyObj::Kind::kFloat);
          std::memcpy(&o->f, &v, 8);
          stack_.push_back(o);
          break;
        }
        case 'X':
          push_str(le<uint32_t>(4));
          break;  // BINUNICODE
        case 0x8c:
          push_str(static_cast<uint8_t>(byte()));
          break;  // SHORT_BINUNICODE
        case 'T':
          push_str(le<uint32_t>(4));
          break;  // BINSTRING
        case 'U':
          push_str(static_cast<uint8_t>(byte()));
          break;     // SHORT_BINSTRING
        case 'c': {  // GLOBAL
          auto o = make(PyObj::Kind::kGlobal);
          const std::string module = line();
          o->s = module + "." + line();
          stack_.push_back(o);
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          auto name = pop();
          auto module = pop();
          auto o = make(PyObj::Kind::kGlobal);
          o->s = module->s + "." + name->s;
          stack_.push_back(o);
          break;
        }
        case 'q':
          memo_[static_cast<uint8_t>(byte())] = top();
          break;
        case 'r':
          memo_[le<uint32_t>(4)] = top();
          break;
        case 'h':
          stack_.push_back(memo(static_cast<uint8_t>(byte())));
          break;
        case 'j':
          stack_.push_back(memo(le<uint32_t>(4)));
          break;
        case '}':
          stack_.push_back(make(PyObj::Kind::kDict));
          break;
        case ']':
          stack_.push_back(make(PyObj::Kind::kList));
          break;
        case ')':
          stack_.push_back(make(PyObj::Kind::kTuple));
          break;
        case 't': {
          auto o = make(PyObj::Kind::kTuple);
          o->items = pop_mark();
          stack_.push_back(o);
          break;
        }
        case 0x85:
        case 0x86:
        case 0x87: {  // TUPLE1..3
          auto o = make(PyObj::Kind::kTuple);
          const size_t n = op - 0x84;
          if (stack_.size() < n) fail(path_, "corrupt data.pkl (stack underflow)");
          o->items.assign(stack_.end() - static_cast<std::ptrdiff_t>(n), stack_.end());
          stack_.resize(stack_.size() - n);
          stack_.push_back(o);
          break;
        }
        case 'a': {  // APPEND
          auto v = pop();
          top()->items.push_back(v);
          break;
        }
        case 'e': {  // APPENDS
          auto vs = pop_mark();
          auto& list = top()->items;
          list.insert(list.end(), vs.begin(), vs.end());
          break;
        }
        case 's': {  // SETITEM
          auto v = pop();
          auto k = pop();
          set_item(top(), k, v);
          break;
        }
        case 'u': {  // SETITEMS
          auto vs = pop_mark();
          if (vs.size() % 2) fail(path_, "corrupt data.pkl (odd SETITEMS)");
          for (size_t k = 0; k < vs.size(); k += 2) set_item(top(), vs[k], vs[k + 1]);
          break;
        }
        case 'b':
          pop();
          break;     // BUILD: object state (OrderedDict._metadata) is not needed
        case 'R': {  // REDUCE
          auto args = pop();
          auto callable = pop();
          stack_.push_back(reduce(callable, args));
          break;
        }
        case 0x81: {  // NEWOBJ
          auto args = pop();
          auto cls = pop();
          stack_.push_back(reduce(cls, args));
          break;
        }
        case 'Q':
          stack_.push_back(persistent_load(pop()));
          break;  // BINPERSID
        default: {
          char hex[8];
          std::snprintf(hex, sizeof hex, "0x%02x", op);
          fail(path_, std::string("unsupported pickle opcode ") + hex + " in data.pkl");
        }
      }
    }
  }

 private:
  char byte() {
    if (p_ >= end_) fail(path_, "truncated data.pkl");
    return *p_++;
  }
  const char* bytes(size_t n) {
    if (static_cast<size_t>(end_ - p_) < n) fail(path_, "truncated data.pkl");
    const char* b = p_;
    p_ += n;
    return b;
  }
  template <typename T>
  T le(size_t n) {
    const char* b = bytes(n);
    uint64_t v = 0;
    for (size_t k = n; k-- > 0;) v = (v << 8) | static_cast<uint8_t>(b[k]);
    return static_cast<T>(v);
  }
  std::string line() {
    std::string s;
    for (char c = byte(); c != '\n'; c = byte()) s.push_back(c);
    return s;
  }
  void push_int(int64_t v) {
    auto o = make(PyObj::Kind::kInt);
    o->i = v;
    stack_.push_back(o);
  }
  void push_str(size_t n) {
    auto o = make(PyObj::Kind::kStr);
    o->s.assign(bytes(n), n);
    stack_.push_back(o);
  }
  Obj pop() {
    if (stack_.empty()) fail(path_, "corrupt data.pkl (stack underflow)");
    auto o = stack_.back();
    stack_.pop_back();
    return o;
  }
  Obj top() {
    if (stack_.empty()) fail(path_, "corrupt data.pkl (stack underflow)");
    return stack_.back();
  }
  std::vector<Obj> pop_mark() {
    if (marks_.empty()) fail(path_, "corrupt data.pkl (no MARK)");
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<Obj> out(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return out;
  }
  Obj memo(size_t k) {
    const auto it = memo_.find(k);
    if (it == memo_.end()) fail(path_, "corrupt data.pkl (memo)");
    return it->second;
  }
  void set_item(const Obj& dict, const Obj& k, const Obj& v) {
    if (dict->kind != PyObj::Kind::kDict) fail(path_, "data.pkl: SETITEM on a non-dict");
    dict->dict.emplace_back(k, v);
  }
  static std::vector<int64_t> ints(const Obj& tuple) {
    std::vector<int64_t> out;
    for (const auto& o : tuple->items) out.push_back(o->i);
    return out;
  }

  Obj reduce(const Obj& callable, const Obj& args) {
    if (callable->kind != PyObj::Kind::kGlobal) fail(path_, "data.pkl: REDUCE of a non-global");
    const std::string& name = callable->s;
    if (name == "collections.OrderedDict" || name == "builtins.dict" ||
        name == "__builtin__.dict") {
      return make(PyObj::Kind::kDict);
    }
    if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor") {
      if (args->items.size() < 4 || args->items[0]->kind != PyObj::Kind::kTensor) {
        fail(path_, "data.pkl: unexpected arguments of " + name);
      }
      auto o = make(PyObj::Kind::kTensor);
      o->tensor = args->items[0]->tensor.as_strided(ints(args->items[2]), ints(args->items[3]),
                                                    args->items[1]->i);
      return o;
    }
    if (name == "torch._utils._rebuild_parameter") {
      if (args->items.empty() || args->items[0]->kind != PyObj::Kind::kTensor) {
        fail(path_, "data.pkl: unexpected arguments of " + name);
      }
      return args->items[0];
    }
    fail(path_, "data.pkl: unsupported global '" + name + "' (not a state_dict of tensors?)");
  }

  Obj persistent_load(const Obj& pid) {
    if (pid->kind != PyObj::Kind::kTuple || pid->items.size() < 5 ||
        pid->items[0]->s != "storage") {
      fail(path_, "data.pkl: unsupported persistent id");
    }
    const torch::Dtype dtype = storage_dtype(pid->items[1]->s, path_);
    const std::string key = pid->items[2]->s;
    const int64_t numel = pid->items[4]->i;
    auto it = storages_.find(key);
    if (it == storages_.end()) {
      auto storage = torch::empty({numel}, torch::TensorOptions().dtype(dtype));
      const std::string record = "data/" + key;
      if (!reader_.hasRecord(record)) fail(path_, "missing record " + record);
      auto [data, size] = reader_.getRecord(record);
      const size_t expected = static_cast<size_t>(numel) * storage.element_size();
      if (size != expected) fail(path_, "record " + record + " has the wrong size");
      if (size > 0) std::memcpy(storage.data_ptr(), data.get(), size);
      it = storages_.emplace(key, storage).first;
    }
    auto o = make(PyObj::Kind::kTensor);
    o->tensor = it->second;
    return o;
  }

  std::string path_;
  const char* p_;
  const char* end_;
  caffe2::serialize::PyTorchStreamReader& reader_;
  std::vector<Obj> stack_;
  std::vector<size_t> marks_;
  std::map<size_t, Obj> memo_;
  std::map<std::string, torch::Tensor> storages_;
};

// ---- pickle writer (torch.save's layout of an OrderedDict of tensors) ---------------------------

class Pickler {
 public:
  void proto() { op(0x80), raw("\x02", 1); }
  void op(int code) { out_.push_back(static_cast<char>(code)); }
  void raw(const char* b, size_t n) { out_.append(b, n); }
  void global(const std::string& module, const std::string& name) {
    op('c');
    out_ += module + "\n" + name + "\n";
  }
  void str(const std::string& s) {
    op('X');
    le(static_cast<uint32_t>(s.size()), 4);
    out_ += s;
  }
  void integer(int64_t v) {
    if (v >= 0 && v < 256) {
      op('K');
      le(static_cast<uint64_t>(v), 1);
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
      op('J');
      le(static_cast<uint32_t>(static_cast<int32_t>(v)), 4);
    } else {
      op(0x8a);
      op(8);
      le(static_cast<uint64_t>(v), 8);
    }
  }
  void int_tuple(const torch::IntArrayRef values) {
    op('(');
    for (const int64_t v : values) integer(v);
    op('t');
  }
  const std::string& bytes() const { return out_; }

 private:
  void le(uint64_t v, int n) {
    for (int k = 0; k < n; ++k) out_.push_back(static_cast<char>((v >> (8 * k)) & 0xff));
  }
  std::string out_;
};

std::string storage_name(torch::Dtype dtype, const std::string& path) {
  switch (dtype) {
    case torch::kFloat32:
      return "FloatStorage";
    case torch::kFloat64:
      return "DoubleStorage";
    case torch::kFloat16:
      return "HalfStorage";
    case torch::kBFloat16:
      return "BFloat16Storage";
    case torch::kInt64:
      return "LongStorage";
    case torch::kInt32:
      return "IntStorage";
    case torch::kInt16:
      return "ShortStorage";
    case torch::kInt8:
      return "CharStorage";
    case torch::kUInt8:
      return "ByteStorage";
    case torch::kBool:
      return "BoolStorage";
    default:
      fail(path, std::string("cannot write dtype ") + c10::toString(dtype));
  }
}

void rename_into_place(const std::string& tmp, const std::string& path) {
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    fail(path, "cannot rename the temporary file into place");
  }
}

// ---- HDF5 helpers -------------------------------------------------------------------------------

struct H5Handle {
  hid_t id;
  herr_t (*close)(hid_t);
  H5Handle(hid_t i, herr_t (*c)(hid_t)) : id(i), close(c) {}
  ~H5Handle() {
    if (id >= 0) close(id);
  }
  H5Handle(const H5Handle&) = delete;
  H5Handle& operator=(const H5Handle&) = delete;
};

std::vector<std::string> parse_json_strings(const std::string& json) {
  std::vector<std::string> out;
  size_t k = 0;
  while ((k = json.find('"', k)) != std::string::npos) {
    std::string s;
    for (++k; k < json.size() && json[k] != '"'; ++k) {
      if (json[k] == '\\' && k + 1 < json.size()) ++k;
      s.push_back(json[k]);
    }
    ++k;
    out.push_back(s);
  }
  return out;
}

std::string read_string_attr(hid_t object, const char* name) {
  H5Handle attr(H5Aopen(object, name, H5P_DEFAULT), H5Aclose);
  if (attr.id < 0) return {};
  H5Handle type(H5Aget_type(attr.id), H5Tclose);
  if (H5Tget_class(type.id) != H5T_STRING) return {};
  if (H5Tis_variable_str(type.id) > 0) {
    H5Handle mem(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(mem.id, H5T_VARIABLE);
    H5Tset_cset(mem.id, H5Tget_cset(type.id));
    char* value = nullptr;
    if (H5Aread(attr.id, mem.id, &value) < 0 || value == nullptr) return {};
    std::string out(value);
    H5free_memory(value);
    return out;
  }
  const size_t size = H5Tget_size(type.id);
  std::string out(size, '\0');
  H5Handle mem(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(mem.id, size);
  if (H5Aread(attr.id, mem.id, out.data()) < 0) return {};
  out.resize(std::strlen(out.c_str()));
  return out;
}

herr_t collect_name(hid_t, const char* name, const H5L_info_t*, void* data) {
  static_cast<std::vector<std::string>*>(data)->emplace_back(name);
  return 0;
}

}  // namespace

StateDict read_torch_state_dict(const std::string& path) {
  if (!std::filesystem::is_regular_file(path)) fail(path, "no such file");
  StateDict out;
  try {
    caffe2::serialize::PyTorchStreamReader reader(path);
    if (reader.hasRecord("byteorder")) {
      auto [data, size] = reader.getRecord("byteorder");
      const std::string order(static_cast<const char*>(data.get()), size);
      if (order != "little") fail(path, "big-endian files are not supported");
    }
    if (!reader.hasRecord("data.pkl")) fail(path, "no data.pkl (not a torch.save zip file?)");
    auto [data, size] = reader.getRecord("data.pkl");
    Unpickler unpickler(path, static_cast<const char*>(data.get()), size, reader);
    const Obj root = unpickler.run();
    if (root->kind != PyObj::Kind::kDict) fail(path, "the pickled object is not a dict");
    for (const auto& [k, v] : root->dict) {
      if (k->kind != PyObj::Kind::kStr || v->kind != PyObj::Kind::kTensor) {
        fail(path, "the dict holds something other than str -> tensor");
      }
      out.emplace_back(k->s, v->tensor);
    }
  } catch (const c10::Error& e) {
    fail(path, std::string("not a readable torch.save zip file: ") + e.what_without_backtrace());
  }
  return out;
}

void write_torch_state_dict(const std::string& path, const StateDict& state) {
  Pickler p;
  p.proto();
  p.global("collections", "OrderedDict");
  p.op(')');
  p.op('R');
  p.op('(');
  std::vector<torch::Tensor> storages;
  for (const auto& [key, value] : state) {
    const torch::Tensor t = value.detach().to(torch::kCPU).contiguous();
    p.str(key);
    p.global("torch._utils", "_rebuild_tensor_v2");
    p.op('(');
    // persistent id ('storage', torch.<Type>Storage, key, 'cpu', numel)
    p.op('(');
    p.str("storage");
    p.global("torch", storage_name(t.scalar_type(), path));
    p.str(std::to_string(storages.size()));
    p.str("cpu");
    p.integer(t.numel());
    p.op('t');
    p.op('Q');
    p.integer(0);
    p.int_tuple(t.sizes());
    p.int_tuple(t.strides());
    p.op(0x89);  // requires_grad False
    p.global("collections", "OrderedDict");
    p.op(')');
    p.op('R');
    p.op('t');
    p.op('R');
    storages.push_back(t);
  }
  p.op('u');
  p.op('.');

  const std::string tmp = path + ".tmp";
  {
    std::ofstream file(tmp, std::ios::binary | std::ios::trunc);
    if (!file) fail(path, "cannot open " + tmp + " for writing");
    try {
      caffe2::serialize::PyTorchStreamWriter writer([&file](const void* buf, size_t n) -> size_t {
        file.write(static_cast<const char*>(buf), static_cast<std::streamsize>(n));
        return file ? n : 0;
      });
      writer.writeRecord("data.pkl", p.bytes().data(), p.bytes().size());
      writer.writeRecord("byteorder", "little", 6);
      for (size_t k = 0; k < storages.size(); ++k) {
        const auto& t = storages[k];
        writer.writeRecord("data/" + std::to_string(k), t.data_ptr(),
                           static_cast<size_t>(t.numel()) * t.element_size());
      }
      writer.writeEndOfFile();
    } catch (const c10::Error& e) {
      file.close();
      std::filesystem::remove(tmp);
      fail(path, std::string("write failed: ") + e.what_without_backtrace());
    }
    file.flush();
    if (!file) {
      file.close();
      std::filesystem::remove(tmp);
      fail(path, "write failed");
    }
  }
  rename_into_place(tmp, path);
}

StateDict read_hdf5_state_dict(const std::string& path, const std::string& group) {
  // HDF5 is not thread-safe: share the process-wide lock with the framework's stores.
  const std::lock_guard<std::recursive_mutex> lock(w2p::hdf5_mutex());
  H5Handle file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (file.id < 0) fail(path, "cannot open HDF5 file");
  H5Handle grp(H5Gopen2(file.id, group.c_str(), H5P_DEFAULT), H5Gclose);
  if (grp.id < 0) fail(path, "no group '" + group + "'");
  std::vector<std::string> names;
  H5Literate(grp.id, H5_INDEX_NAME, H5_ITER_INC, nullptr, collect_name, &names);
  const auto ordered = parse_json_strings(read_string_attr(grp.id, "keys_in_order"));
  if (!ordered.empty()) {
    if (ordered.size() != names.size()) fail(path, group + ": keys_in_order does not match");
    names = ordered;
  }
  StateDict out;
  for (const auto& name : names) {
    H5Handle ds(H5Dopen2(grp.id, name.c_str(), H5P_DEFAULT), H5Dclose);
    if (ds.id < 0) fail(path, "cannot open dataset " + group + "/" + name);
    H5Handle type(H5Dget_type(ds.id), H5Tclose);
    H5Handle space(H5Dget_space(ds.id), H5Sclose);
    const int rank = H5Sget_simple_extent_ndims(space.id);
    std::vector<hsize_t> dims(static_cast<size_t>(std::max(rank, 0)));
    H5Sget_simple_extent_dims(space.id, dims.data(), nullptr);
    std::vector<int64_t> shape(dims.begin(), dims.end());
    torch::Dtype dtype;
    hid_t mem_type;
    const auto cls = H5Tget_class(type.id);
    if (cls == H5T_FLOAT) {
      const bool f64 = H5Tget_size(type.id) == 8;
      dtype = f64 ? torch::kFloat64 : torch::kFloat32;
      mem_type = f64 ? H5T_NATIVE_DOUBLE : H5T_NATIVE_FLOAT;
    } else if (cls == H5T_INTEGER) {
      dtype = torch::kInt64;
      mem_type = H5T_NATIVE_INT64;
    } else {
      fail(path, group + "/" + name + " is not numeric");
    }
    auto t = torch::empty(shape, torch::TensorOptions().dtype(dtype));
    if (t.numel() > 0 &&
        H5Dread(ds.id, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, t.data_ptr()) < 0) {
      fail(path, "cannot read " + group + "/" + name);
    }
    out.emplace_back(name, t);
  }
  return out;
}

void write_hdf5_state_dict(const std::string& path, const StateDict& state,
                           const std::string& group) {
  const std::lock_guard<std::recursive_mutex> lock(w2p::hdf5_mutex());
  const std::string tmp = path + ".tmp";
  {
    H5Handle file(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
    if (file.id < 0) fail(path, "cannot create " + tmp);
    H5Handle grp(H5Gcreate2(file.id, group.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                 H5Gclose);
    if (grp.id < 0) fail(path, "cannot create group " + group);
    std::string json = "[";
    for (const auto& [key, value] : state) {
      torch::Tensor t = value.detach().to(torch::kCPU).contiguous();
      hid_t type;
      if (t.scalar_type() == torch::kFloat64) {
        type = H5T_NATIVE_DOUBLE;
      } else if (t.is_floating_point()) {
        t = t.to(torch::kFloat32);
        type = H5T_NATIVE_FLOAT;
      } else {
        t = t.to(torch::kInt64);
        type = H5T_NATIVE_INT64;
      }
      std::vector<hsize_t> dims(t.sizes().begin(), t.sizes().end());
      H5Handle space(
          t.dim() == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(t.dim(), dims.data(), nullptr),
          H5Sclose);
      H5Handle ds(
          H5Dcreate2(grp.id, key.c_str(), type, space.id, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
          H5Dclose);
      if (ds.id < 0 || H5Dwrite(ds.id, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, t.data_ptr()) < 0) {
        fail(path, "cannot write " + group + "/" + key);
      }
      json += (json.size() > 1 ? ", \"" : "\"") + key + "\"";
    }
    json += "]";
    H5Handle str_type(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(str_type.id, json.size());
    H5Handle space(H5Screate(H5S_SCALAR), H5Sclose);
    H5Handle attr(
        H5Acreate2(grp.id, "keys_in_order", str_type.id, space.id, H5P_DEFAULT, H5P_DEFAULT),
        H5Aclose);
    if (attr.id < 0 || H5Awrite(attr.id, str_type.id, json.data()) < 0) {
      fail(path, "cannot write keys_in_order");
    }
  }
  rename_into_place(tmp, path);
}

}  // namespace w2p::torch_common
