#include "w2p/tensor.hpp"

#include <algorithm>

#include <cstdlib>
#include <cstring>
#include <new>
#include <sstream>

#include "w2p/error.hpp"

namespace w2p {

const char* to_string(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return "f32";
    case DType::kF64:
      return "f64";
    case DType::kI32:
      return "i32";
    case DType::kI64:
      return "i64";
    case DType::kU8:
      return "u8";
    case DType::kBool:
      return "bool";
    case DType::kStr:
      return "str";
  }
  return "?";
}

bool parse_dtype(std::string_view text, DType* out) {
  static constexpr DType kAll[] = {DType::kF32, DType::kF64,  DType::kI32, DType::kI64,
                                   DType::kU8,  DType::kBool, DType::kStr};
  for (DType d : kAll) {
    if (text == to_string(d)) {
      *out = d;
      return true;
    }
  }
  return false;
}

std::size_t element_size(DType dtype) {
  switch (dtype) {
    case DType::kF32:
    case DType::kI32:
      return 4;
    case DType::kF64:
    case DType::kI64:
      return 8;
    case DType::kU8:
    case DType::kBool:
      return 1;
    case DType::kStr:
      return 0;
  }
  return 0;
}

std::string shape_to_string(const Shape& shape) {
  std::string out = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) out += ",";
    out += std::to_string(shape[i]);
  }
  return out + "]";
}

namespace detail {
void size_mismatch(std::size_t values, const Shape& shape) {
  throw Error(ErrorKind::kInternal, "Tensor::from_vector: " + std::to_string(values) +
                                        " values for shape " + shape_to_string(shape));
}
}  // namespace detail

namespace {

std::int64_t count(const Shape& shape) {
  std::int64_t n = 1;
  for (auto d : shape) {
    if (d < 0)
      throw Error(ErrorKind::kInternal, "negative tensor dimension in " + shape_to_string(shape));
    n *= d;
  }
  return n;
}

}  // namespace

Tensor Tensor::zeros(DType dtype, Shape shape) {
  Tensor t;
  t.dtype_ = dtype;
  const std::int64_t n = count(shape);
  t.shape_ = std::move(shape);
  if (dtype == DType::kStr) {
    auto strings = std::make_shared<std::vector<std::string>>(static_cast<std::size_t>(n));
    t.data_ = strings->data();
    if (t.data_ == nullptr) t.data_ = strings.get();  // zero elements: still "defined"
    t.owner_ = std::move(strings);
    return t;
  }
  const std::size_t bytes = static_cast<std::size_t>(n) * element_size(dtype);
  const std::size_t rounded = ((bytes + 63) / 64) * 64 + 64;  // never zero, 64-byte aligned
  void* p = std::aligned_alloc(64, rounded);
  if (p == nullptr) throw std::bad_alloc();
  std::memset(p, 0, rounded);
  t.owner_ = std::shared_ptr<void>(p, [](void* q) { std::free(q); });
  t.data_ = p;
  return t;
}

Tensor Tensor::wrap(DType dtype, Shape shape, std::shared_ptr<void> owner, void* data) {
  W2P_ASSERT(data != nullptr, "Tensor::wrap of a null buffer");
  Tensor t;
  t.dtype_ = dtype;
  count(shape);
  t.shape_ = std::move(shape);
  t.owner_ = std::move(owner);
  t.data_ = data;
  return t;
}

std::int64_t Tensor::numel() const { return count(shape_); }

void Tensor::check_dtype(DType expected) const {
  if (data_ == nullptr) throw Error(ErrorKind::kInternal, "access to an undefined tensor");
  if (dtype_ != expected) {
    throw Error(ErrorKind::kType, std::string("tensor holds ") + to_string(dtype_) +
                                      shape_to_string(shape_) + ", accessed as " +
                                      to_string(expected));
  }
}

Tensor Tensor::clone() const {
  if (!defined()) return {};
  Tensor t = zeros(dtype_, shape_);
  if (dtype_ == DType::kStr) {
    const auto* src = static_cast<const std::string*>(data_);
    auto* dst = static_cast<std::string*>(t.data_);
    for (std::int64_t i = 0; i < numel(); ++i) dst[i] = src[i];
  } else {
    std::memcpy(t.data_, data_, nbytes());
  }
  return t;
}

Tensor Tensor::reshape(Shape shape) const {
  if (count(shape) != numel()) {
    throw Error(ErrorKind::kInternal,
                "cannot reshape " + shape_to_string(shape_) + " to " + shape_to_string(shape));
  }
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

bool Tensor::equals(const Tensor& other) const {
  if (defined() != other.defined()) return false;
  if (!defined()) return true;
  if (dtype_ != other.dtype_ || shape_ != other.shape_) return false;
  if (dtype_ == DType::kStr) {
    const auto* a = static_cast<const std::string*>(data_);
    const auto* b = static_cast<const std::string*>(other.data_);
    for (std::int64_t i = 0; i < numel(); ++i) {
      if (a[i] != b[i]) return false;
    }
    return true;
  }
  return std::memcmp(data_, other.data_, nbytes()) == 0;
}

const Tensor& Item::get(const std::string& field) const {
  auto it = fields_.find(field);
  if (it == fields_.end()) {
    std::string have;
    for (const auto& [k, v] : fields_) have += (have.empty() ? "" : ", ") + k;
    throw Error(ErrorKind::kInternal, "item has no field '" + field + "'")
        .note("fields present: " + (have.empty() ? std::string("none") : have));
  }
  return it->second;
}

Item& Item::set(const std::string& field, Tensor value) {
  fields_[field] = std::move(value);
  return *this;
}

std::size_t Item::nbytes() const {
  std::size_t n = 0;
  for (const auto& [k, v] : fields_) {
    if (v.dtype() == DType::kStr) {
      for (std::int64_t i = 0; i < v.numel(); ++i) n += v.data<std::string>()[i].size();
    } else {
      n += v.nbytes();
    }
  }
  return n;
}

std::string TensorSpec::str() const {
  std::string out = std::string(to_string(dtype)) + "[";
  for (std::size_t i = 0; i < dims.size(); ++i) {
    if (i > 0) out += ",";
    out += dims[i].is_fixed() ? std::to_string(dims[i].size) : dims[i].symbol;
  }
  return out + "]";
}

bool TensorSpec::parse(std::string_view text, TensorSpec* out, std::string* error) {
  const auto open = text.find('[');
  if (open == std::string_view::npos || text.back() != ']') {
    *error = "expected dtype[dims], e.g. f32[B,7,2048]";
    return false;
  }
  TensorSpec s;
  if (!parse_dtype(text.substr(0, open), &s.dtype)) {
    *error = "unknown dtype '" + std::string(text.substr(0, open)) +
             "' (expected f32, f64, i32, i64, u8, bool or str)";
    return false;
  }
  std::string_view body = text.substr(open + 1, text.size() - open - 2);
  while (!body.empty()) {
    const auto comma = body.find(',');
    std::string_view tok = body.substr(0, comma);
    while (!tok.empty() && tok.front() == ' ') tok.remove_prefix(1);
    while (!tok.empty() && tok.back() == ' ') tok.remove_suffix(1);
    if (tok.empty()) {
      *error = "empty dimension";
      return false;
    }
    if (tok.find_first_not_of("0123456789") == std::string_view::npos) {
      s.dims.push_back(Dim::fixed(std::stoll(std::string(tok))));
    } else {
      s.dims.push_back(Dim::sym(std::string(tok)));
    }
    if (comma == std::string_view::npos) break;
    body.remove_prefix(comma + 1);
  }
  *out = std::move(s);
  return true;
}

bool TensorSpec::accepts(const Tensor& tensor) const {
  if (any_shape()) return tensor.defined() && tensor.dtype() == dtype;
  if (!tensor.defined() || tensor.dtype() != dtype || tensor.rank() != dims.size()) return false;
  for (std::size_t i = 0; i < dims.size(); ++i) {
    if (dims[i].is_fixed() && dims[i].size != tensor.dim(i)) return false;
  }
  return true;
}

TensorSpec spec(DType dtype, std::initializer_list<DimArg> dims) {
  TensorSpec s;
  s.dtype = dtype;
  for (const auto& d : dims) s.dims.push_back(d.dim);
  return s;
}

void Schema::remove(std::string_view name) {
  fields.erase(std::remove_if(fields.begin(), fields.end(),
                              [&](const FieldSpec& f) { return f.name == name; }),
               fields.end());
}

const FieldSpec* Schema::find(std::string_view name) const {
  for (const auto& f : fields) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

std::string Schema::str() const {
  std::ostringstream out;
  out << "{";
  for (std::size_t i = 0; i < fields.size(); ++i) {
    out << (i > 0 ? ", " : "") << fields[i].name << ": " << fields[i].spec.str();
  }
  out << "}";
  return out.str();
}

}  // namespace w2p
