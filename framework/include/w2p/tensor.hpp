// w2p::Tensor, w2p::Item and their type descriptions (TensorSpec, FieldSpec, Schema).
//
// A Tensor is a dtype, a shape and a reference-counted, 64-byte aligned buffer (row-major,
// contiguous). Copies share the buffer: once a tensor has been emitted into a channel, several
// consumers may read it at the same time, so nobody writes to it any more (clone() first).
// An Item is what one channel carries per stream position: a set of named tensors (fields).
// A Schema declares those fields with dtype and shape; shapes may use fixed sizes (7), symbols
// that must agree wherever they appear ("B") and ragged dims that vary per item ("?").
// LibTorch stays out of this header; torch plugins convert with w2p/torch_bridge.hpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace w2p {

enum class DType : std::uint8_t { kF32, kF64, kI32, kI64, kU8, kBool, kStr };

const char* to_string(DType dtype);  ///< "f32", "f64", "i32", "i64", "u8", "bool", "str"
/// Parses "f32" etc.; returns false for an unknown name.
bool parse_dtype(std::string_view text, DType* out);
/// Bytes per element (0 for kStr, whose elements are std::string).
std::size_t element_size(DType dtype);

template <typename T>
struct DTypeOf;
template <>
struct DTypeOf<float> {
  static constexpr DType kValue = DType::kF32;
};
template <>
struct DTypeOf<double> {
  static constexpr DType kValue = DType::kF64;
};
template <>
struct DTypeOf<std::int32_t> {
  static constexpr DType kValue = DType::kI32;
};
template <>
struct DTypeOf<std::int64_t> {
  static constexpr DType kValue = DType::kI64;
};
template <>
struct DTypeOf<std::uint8_t> {
  static constexpr DType kValue = DType::kU8;
};
template <>
struct DTypeOf<bool> {
  static constexpr DType kValue = DType::kBool;
};
template <>
struct DTypeOf<std::string> {
  static constexpr DType kValue = DType::kStr;
};

using Shape = std::vector<std::int64_t>;
std::string shape_to_string(const Shape& shape);  ///< "[7,16000]"

class Tensor {
 public:
  Tensor() = default;  ///< an empty (undefined) tensor
  /// Zero-initialised tensor (empty strings for kStr).
  static Tensor zeros(DType dtype, Shape shape);
  /// Tensor viewing `data` owned by `owner` (zero-copy bridge; `data` must be 64-byte aligned
  /// or at least aligned for the dtype, contiguous, and live as long as `owner`).
  static Tensor wrap(DType dtype, Shape shape, std::shared_ptr<void> owner, void* data);
  template <typename T>
  static Tensor from_vector(const std::vector<T>& values, Shape shape);
  template <typename T>
  static Tensor from_vector(const std::vector<T>& values) {
    return from_vector(values, Shape{static_cast<std::int64_t>(values.size())});
  }
  template <typename T>
  static Tensor scalar(T value) {
    return from_vector(std::vector<T>{value}, Shape{});
  }
  static Tensor scalar(const char* value) { return scalar(std::string(value)); }

  bool defined() const { return data_ != nullptr; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  std::int64_t dim(std::size_t axis) const { return shape_.at(axis); }
  std::size_t rank() const { return shape_.size(); }
  std::int64_t numel() const;
  std::size_t nbytes() const { return static_cast<std::size_t>(numel()) * element_size(dtype_); }

  /// Typed access; throws w2p::Error (kType) when T does not match the dtype.
  template <typename T>
  const T* data() const;
  template <typename T>
  T* mutable_data();
  const void* raw() const { return data_; }
  void* mutable_raw() { return data_; }
  /// The value of a one-element tensor.
  template <typename T>
  T item() const {
    return data<T>()[0];
  }
  template <typename T>
  std::vector<T> to_vector() const {
    const T* p = data<T>();
    return std::vector<T>(p, p + numel());
  }

  Tensor clone() const;
  /// Same buffer, another shape with the same number of elements.
  Tensor reshape(Shape shape) const;
  /// Byte-wise (and string-wise) equality of dtype, shape and values.
  bool equals(const Tensor& other) const;
  const std::shared_ptr<void>& owner() const { return owner_; }

 private:
  void check_dtype(DType expected) const;
  DType dtype_ = DType::kF32;
  Shape shape_;
  std::shared_ptr<void> owner_;
  void* data_ = nullptr;
};

/// One stream position of a channel: named tensors.
class Item {
 public:
  Item() = default;
  Item(std::initializer_list<std::pair<const std::string, Tensor>> fields) : fields_(fields) {}
  bool has(const std::string& field) const { return fields_.count(field) != 0; }
  /// Throws w2p::Error (kInternal) naming the missing field.
  const Tensor& get(const std::string& field) const;
  Item& set(const std::string& field, Tensor value);
  const std::map<std::string, Tensor>& fields() const { return fields_; }
  bool empty() const { return fields_.empty(); }
  std::size_t nbytes() const;

 private:
  std::map<std::string, Tensor> fields_;
};

/// One dimension of a declared shape: a fixed size, a symbol ("B": equal wherever it appears
/// in a graph's connected ports), or ragged ("?": may differ from item to item).
struct Dim {
  std::int64_t size = -1;  ///< >= 0 when fixed
  std::string symbol;      ///< non-empty when symbolic; "?" = ragged
  static Dim fixed(std::int64_t n) { return Dim{n, {}}; }
  static Dim sym(std::string name) { return Dim{-1, std::move(name)}; }
  static Dim ragged() { return Dim{-1, "?"}; }
  /// Any number of dims of any size ("..."): only as the single dim of a spec, f32[...].
  static Dim any_rank() { return Dim{-1, "..."}; }
  bool is_fixed() const { return size >= 0; }
  bool is_ragged() const { return symbol == "?"; }
  bool is_any_rank() const { return symbol == "..."; }
  bool operator==(const Dim& o) const { return size == o.size && symbol == o.symbol; }
};

struct TensorSpec {
  DType dtype = DType::kF32;
  std::vector<Dim> dims;  ///< empty = scalar
  /// "f32[B,7,16000]", "i64[]", "f32[?]".
  std::string str() const;
  /// Parses the str() form; returns false with `error` set on bad syntax.
  static bool parse(std::string_view text, TensorSpec* out, std::string* error);
  /// Whether a concrete tensor fits (fixed dims equal; symbols and ragged dims accept any size).
  bool accepts(const Tensor& tensor) const;
  /// f32[...]: any shape of this dtype.
  bool any_shape() const { return dims.size() == 1 && dims[0].is_any_rank(); }
  static TensorSpec any(DType dtype) { return TensorSpec{dtype, {Dim::any_rank()}}; }
};

/// Shorthand used in contracts: spec(DType::kF32, {7, 16000}), spec(DType::kF32, {"B", 7}).
struct DimArg {
  DimArg(int n) : dim(Dim::fixed(n)) {}                  // NOLINT: implicit on purpose
  DimArg(std::int64_t n) : dim(Dim::fixed(n)) {}         // NOLINT
  DimArg(const char* symbol) : dim(Dim::sym(symbol)) {}  // NOLINT
  Dim dim;
};
TensorSpec spec(DType dtype, std::initializer_list<DimArg> dims = {});

struct FieldSpec {
  std::string name;
  TensorSpec spec;
  std::string doc;
};

/// The fields an item of a port or channel carries.
struct Schema {
  std::vector<FieldSpec> fields;
  const FieldSpec* find(std::string_view name) const;
  /// Removes the field of that name if present (an output field replacing an input field).
  void remove(std::string_view name);
  /// "{audio: f32[7,16000], source_pos: f64[3]}"
  std::string str() const;
};

// ---- template definitions ----

namespace detail {
[[noreturn]] void size_mismatch(std::size_t values, const Shape& shape);
}  // namespace detail

template <typename T>
Tensor Tensor::from_vector(const std::vector<T>& values, Shape shape) {
  Tensor t = zeros(DTypeOf<T>::kValue, std::move(shape));
  const std::int64_t n = t.numel();
  if (static_cast<std::int64_t>(values.size()) != n)
    detail::size_mismatch(values.size(), t.shape());
  T* out = t.mutable_data<T>();
  for (std::int64_t i = 0; i < n; ++i) {
    out[i] = values[static_cast<std::size_t>(i)];
  }
  return t;
}

template <typename T>
const T* Tensor::data() const {
  check_dtype(DTypeOf<T>::kValue);
  return static_cast<const T*>(data_);
}

template <typename T>
T* Tensor::mutable_data() {
  check_dtype(DTypeOf<T>::kValue);
  return static_cast<T*>(data_);
}

}  // namespace w2p
