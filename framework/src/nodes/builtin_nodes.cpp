#include "nodes/builtin_nodes.hpp"

#include <cmath>
#include <cstring>
#include <set>
#include <sstream>

#include "nodes/store_reader_node.hpp"

namespace w2p {

namespace {

constexpr const char* kShapeSuffix = "_shape";

bool has_variable_dim(const TensorSpec& s) {
  for (const auto& d : s.dims) {
    if (!d.is_fixed()) return true;
  }
  return false;
}

// Row-major strides of `dims` (one extra trailing 1 keeps the vector non-empty for scalars).
std::vector<std::int64_t> strides(const Shape& dims) {
  std::vector<std::int64_t> s(dims.size() + 1, 1);
  for (std::size_t d = dims.size(); d-- > 0;) s[d] = s[d + 1] * dims[d];
  return s;
}

// Copies the leading corner `region` of a row-major block (dims `from_dims`, starting at element
// `from_at` of `from`) into a block with dims `to_dims` starting at element `to_at` of `to`.
void copy_corner(const Tensor& from, std::int64_t from_at, const Shape& from_dims, Tensor& to,
                 std::int64_t to_at, const Shape& to_dims, const Shape& region) {
  const std::size_t rank = region.size();
  std::int64_t count = 1;
  for (auto r : region) count *= r;
  if (count == 0) return;
  const std::vector<std::int64_t> fs = strides(from_dims);
  const std::vector<std::int64_t> ts = strides(to_dims);
  const std::int64_t inner = rank == 0 ? 1 : region[rank - 1];
  const std::size_t esize = element_size(from.dtype());
  std::vector<std::int64_t> idx(rank + 1, 0);
  for (std::int64_t row = 0; row < count / inner; ++row) {
    std::int64_t f = from_at;
    std::int64_t t = to_at;
    for (std::size_t d = 0; d + 1 < rank; ++d) {
      f += idx[d] * fs[d + 1];
      t += idx[d] * ts[d + 1];
    }
    if (from.dtype() == DType::kStr) {
      for (std::int64_t k = 0; k < inner; ++k) {
        to.mutable_data<std::string>()[t + k] = from.data<std::string>()[f + k];
      }
    } else {
      std::memcpy(static_cast<char*>(to.mutable_raw()) + static_cast<std::size_t>(t) * esize,
                  static_cast<const char*>(from.raw()) + static_cast<std::size_t>(f) * esize,
                  static_cast<std::size_t>(inner) * esize);
    }
    for (std::size_t d = rank; d-- > 1;) {  // odometer over all dims but the last
      if (++idx[d - 1] < region[d - 1]) break;
      idx[d - 1] = 0;
    }
  }
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// ---- core.tensor_source
// ---------------------------------------------------------------------------

class TensorSource final : public Node {
 public:
  static constexpr const char* kDoc =
      "Synthetic tensors: `count` items per epoch of one field with the given dtype and shape, "
      "filled from the per-item random generator (uniform [0,1) or normal) or with the item "
      "index. For smoke tests, benchmarks and examples.";
  static constexpr Port kOut{"out"};

  static std::vector<OptionSpec> options() {
    return {
        OptionSpec::integer("count", 100).range(0, 1e12).describe("items per epoch"),
        OptionSpec::int_list("shape", std::vector<std::int64_t>{4})
            .range(0, 1e9)
            .describe("shape of each item's tensor"),
        OptionSpec::choice("dtype", {"f32", "f64", "i64"}, "f32").describe("element type"),
        OptionSpec::string("field", "x").describe("field name of the tensor"),
        OptionSpec::choice("fill", {"uniform", "normal", "index"}, "uniform")
            .describe("values: per-item random uniform [0,1), standard normal, or the index"),
        OptionSpec::integer("fail_at", -1)
            .range(-1, 1e12)
            .describe("throw at this item index (tests of error handling); -1 = never"),
    };
  }
  static Contract declare(const Options& o) {
    TensorSpec s;
    parse_dtype(o.get_string("dtype"), &s.dtype);
    for (auto d : o.get_int_list("shape")) s.dims.push_back(Dim::fixed(d));
    return Contract()
        .output(kOut, Schema{{FieldSpec{o.get_string("field"), s, "synthetic values"}}},
                "one synthetic tensor per item")
        .repeatable();
  }
  explicit TensorSource(const Options& o)
      : count_(o.get_int("count")),
        shape_(o.get_int_list("shape")),
        field_(o.get_string("field")),
        fill_(o.get_string("fill")),
        fail_at_(o.get_int("fail_at")) {
    parse_dtype(o.get_string("dtype"), &dtype_);
  }
  void open(NodeContext& ctx) override { ctx.expect_items(static_cast<std::uint64_t>(count_)); }
  Flow process(NodeContext& ctx) override {
    const auto i = static_cast<std::int64_t>(ctx.index());
    if (i >= count_) return Flow::kEndOfStream;
    if (i == fail_at_) {
      throw Error(ErrorKind::kData, "fail_at: failing at item " + std::to_string(i) + " as asked");
    }
    Tensor t = Tensor::zeros(dtype_, shape_);
    Rng rng = ctx.rng();
    for (std::int64_t k = 0; k < t.numel(); ++k) {
      const double v = fill_ == "index"    ? static_cast<double>(i)
                       : fill_ == "normal" ? rng.normal()
                                           : rng.uniform();
      switch (dtype_) {
        case DType::kF32:
          t.mutable_data<float>()[k] = static_cast<float>(v);
          break;
        case DType::kF64:
          t.mutable_data<double>()[k] = v;
          break;
        default:
          t.mutable_data<std::int64_t>()[k] = static_cast<std::int64_t>(std::floor(v * 1000));
      }
    }
    ctx.emit(kOut, Item{{field_, std::move(t)}});
    return Flow::kContinue;
  }

 private:
  std::int64_t count_;
  Shape shape_;
  std::string field_;
  std::string fill_;
  std::int64_t fail_at_;
  DType dtype_ = DType::kF32;
};

// ---- core.log
// ---------------------------------------------------------------------------------------

std::string summarize(const Item& item) {
  std::ostringstream out;
  bool first = true;
  for (const auto& [name, t] : item.fields()) {
    out << (first ? "" : ", ") << name << ": " << to_string(t.dtype())
        << shape_to_string(t.shape());
    first = false;
    if (t.numel() == 0) continue;
    if (t.dtype() == DType::kF32 || t.dtype() == DType::kF64) {
      double sum = 0;
      for (std::int64_t k = 0; k < t.numel(); ++k) {
        sum += t.dtype() == DType::kF32 ? t.data<float>()[k] : t.data<double>()[k];
      }
      out << " mean " << sum / static_cast<double>(t.numel());
    } else if (t.dtype() == DType::kStr && t.numel() == 1) {
      out << " \"" << t.data<std::string>()[0].substr(0, 40) << "\"";
    }
  }
  return out.str();
}

class LogNode final : public Node {
 public:
  static constexpr const char* kDoc =
      "Logs a one-line summary (fields, dtypes, shapes, means) of every `every`-th item, and the "
      "item count at the end. A sink.";
  static constexpr Port kIn{"in"};
  static std::vector<OptionSpec> options() {
    return {OptionSpec::integer("every", 1).range(1, 1e12).describe("log every n-th item")};
  }
  static Contract declare(const Options&) {
    return Contract().input_any(kIn, "items to describe").ordered();
  }
  explicit LogNode(const Options& o) : every_(static_cast<std::uint64_t>(o.get_int("every"))) {}
  Flow process(NodeContext& ctx) override {
    if (count_++ % every_ == 0) {
      ctx.info("item " + std::to_string(ctx.seq()) + " (epoch " + std::to_string(ctx.epoch()) +
               "): " + summarize(ctx.in(kIn)));
    }
    return Flow::kContinue;
  }
  void finish(NodeContext& ctx) override { ctx.info(std::to_string(count_) + " items"); }

 private:
  std::uint64_t every_;
  std::uint64_t count_ = 0;
};

// ---- core.null_sink
// ---------------------------------------------------------------------------------

class NullSink final : public Node {
 public:
  static constexpr const char* kDoc = "Consumes and discards items (to leave an output unused).";
  static constexpr Port kIn{"in"};
  static std::vector<OptionSpec> options() { return {}; }
  static Contract declare(const Options&) {
    return Contract().input_any(kIn, "items to discard").max_concurrency(0);
  }
  explicit NullSink(const Options&) {}
  Flow process(NodeContext&) override { return Flow::kContinue; }
};

// ---- core.batch / core.unbatch
// ----------------------------------------------------------------------

Schema batched_schema(const Schema& in, bool fixed_size, std::int64_t size) {
  Schema out;
  for (const auto& f : in.fields) {
    FieldSpec b = f;
    b.spec.dims.insert(b.spec.dims.begin(), fixed_size ? Dim::fixed(size) : Dim::sym("B"));
    for (std::size_t d = 1; d < b.spec.dims.size(); ++d) {
      if (b.spec.dims[d].is_ragged()) b.spec.dims[d] = Dim::sym("pad");
    }
    out.fields.push_back(b);
    if (has_variable_dim(f.spec)) {
      FieldSpec shape{f.name + kShapeSuffix,
                      spec(DType::kI64, {b.spec.dims[0].is_fixed() ? DimArg(size) : DimArg("B"),
                                         static_cast<std::int64_t>(f.spec.dims.size())}),
                      "true shape of each item before padding"};
      out.fields.push_back(shape);
    }
  }
  return out;
}

class BatchNode final : public Node {
 public:
  static constexpr const char* kDoc =
      "Collects `size` consecutive items of one epoch into a batch (new first axis). Fields with "
      "ragged dims are zero-padded to the longest item and get a '<field>_shape' companion with "
      "each item's true shape. The last batch of an epoch is smaller unless drop_last.";
  static constexpr Port kIn{"in"};
  static constexpr Port kOut{"out"};
  static std::vector<OptionSpec> options() {
    return {OptionSpec::integer("size", 64).range(1, 1e9).describe("items per batch"),
            OptionSpec::boolean("drop_last", false)
                .describe("drop an epoch's last, incomplete batch (fixes the batch dim)")};
  }
  static Contract declare(const Options& o) {
    const bool fixed = o.get_bool("drop_last");
    const std::int64_t size = o.get_int("size");
    return Contract()
        .input_any(kIn, "items to batch")
        .output_from(
            kOut, kIn, [fixed, size](const Schema& s) { return batched_schema(s, fixed, size); },
            "batches")
        .cardinality(Cardinality::kAny);
  }
  explicit BatchNode(const Options& o)
      : size_(static_cast<std::size_t>(o.get_int("size"))), drop_last_(o.get_bool("drop_last")) {}
  Flow process(NodeContext& ctx) override {
    items_.push_back(ctx.in(kIn));
    ctx.hold();  // counts against graph.max_in_flight until its batch is emitted
    if (items_.size() == size_) flush(ctx);
    return Flow::kContinue;
  }
  // Batches never span epochs; the last one is emitted as part of its own epoch.
  void end_epoch(NodeContext& ctx) override { flush(ctx); }

 private:
  void flush(NodeContext& ctx) {
    if (!items_.empty() && (items_.size() == size_ || !drop_last_)) {
      Schema schema;  // inferred from the items: dims that differ are variable
      for (const auto& [name, t] : items_.front().fields()) {
        TensorSpec s{t.dtype(), {}};
        for (std::size_t d = 0; d < t.rank(); ++d) {
          bool same = true;
          for (const auto& it : items_) same = same && it.get(name).dim(d) == t.dim(d);
          s.dims.push_back(same && !ragged_.count(name) ? Dim::fixed(t.dim(d)) : Dim::ragged());
        }
        if (has_variable_dim(s)) ragged_.insert(name);  // stays padded in later batches
        schema.fields.push_back({name, s, {}});
      }
      ctx.emit(kOut, collate(items_, schema));
    }
    items_.clear();
  }
  std::size_t size_;
  bool drop_last_;
  std::vector<Item> items_;
  std::set<std::string> ragged_;
};

Schema unbatched_schema(const Schema& in) {
  Schema out;
  for (const auto& f : in.fields) {
    if (ends_with(f.name, kShapeSuffix) && in.find(f.name.substr(0, f.name.size() - 6))) continue;
    FieldSpec u = f;
    if (!u.spec.dims.empty()) u.spec.dims.erase(u.spec.dims.begin());
    if (in.find(f.name + kShapeSuffix) != nullptr) {
      for (auto& d : u.spec.dims) {
        if (!d.is_fixed()) d = Dim::ragged();
      }
    }
    out.fields.push_back(u);
  }
  return out;
}

class UnbatchNode final : public Node {
 public:
  static constexpr const char* kDoc =
      "Splits batches back into items (inverse of core.batch, padding removed).";
  static constexpr Port kIn{"in"};
  static constexpr Port kOut{"out"};
  static std::vector<OptionSpec> options() { return {}; }
  static Contract declare(const Options&) {
    return Contract()
        .input_any(kIn, "batches")
        .output_from(kOut, kIn, unbatched_schema, "items")
        .cardinality(Cardinality::kAny);
  }
  explicit UnbatchNode(const Options&) {}
  Flow process(NodeContext& ctx) override {
    const Item& batch = ctx.in(kIn);
    std::int64_t n = 0;
    for (const auto& [name, t] : batch.fields()) n = t.rank() > 0 ? t.dim(0) : 0;
    for (std::int64_t i = 0; i < n; ++i) ctx.emit(kOut, uncollate(batch, i));
    return Flow::kContinue;
  }
};

}  // namespace

Item collate(const std::vector<Item>& items, const Schema& schema) {
  Item out;
  const auto n = static_cast<std::int64_t>(items.size());
  for (const auto& f : schema.fields) {
    const std::size_t rank = f.spec.dims.size();
    Shape shape{n};
    for (std::size_t d = 0; d < rank; ++d) {
      std::int64_t m = 0;
      for (const auto& it : items) m = std::max(m, it.get(f.name).dim(d));
      shape.push_back(m);
    }
    Tensor batch = Tensor::zeros(f.spec.dtype, shape);
    const std::int64_t block = n == 0 ? 0 : batch.numel() / n;
    const Shape item_dims(shape.begin() + 1, shape.end());
    for (std::int64_t i = 0; i < n; ++i) {
      const Tensor& t = items[static_cast<std::size_t>(i)].get(f.name);
      copy_corner(t, 0, t.shape(), batch, i * block, item_dims, t.shape());
    }
    out.set(f.name, std::move(batch));
    if (has_variable_dim(f.spec)) {
      Tensor shapes = Tensor::zeros(DType::kI64, {n, static_cast<std::int64_t>(rank)});
      for (std::int64_t i = 0; i < n; ++i) {
        const Tensor& t = items[static_cast<std::size_t>(i)].get(f.name);
        for (std::size_t d = 0; d < rank; ++d) {
          shapes.mutable_data<std::int64_t>()[i * static_cast<std::int64_t>(rank) +
                                              static_cast<std::int64_t>(d)] = t.dim(d);
        }
      }
      out.set(f.name + kShapeSuffix, std::move(shapes));
    }
  }
  return out;
}

Item uncollate(const Item& batch, std::int64_t i) {
  Item out;
  for (const auto& [name, t] : batch.fields()) {
    if (ends_with(name, kShapeSuffix) && batch.has(name.substr(0, name.size() - 6))) continue;
    Shape shape(t.shape().begin() + 1, t.shape().end());
    if (batch.has(name + kShapeSuffix)) {
      const Tensor& s = batch.get(name + kShapeSuffix);
      for (std::size_t d = 0; d < shape.size(); ++d) {
        shape[d] = s.data<std::int64_t>()[i * static_cast<std::int64_t>(shape.size()) +
                                          static_cast<std::int64_t>(d)];
      }
    }
    Tensor item = Tensor::zeros(t.dtype(), shape);
    const Shape padded(t.shape().begin() + 1, t.shape().end());
    const std::int64_t block = t.dim(0) == 0 ? 0 : t.numel() / t.dim(0);
    copy_corner(t, i * block, padded, item, 0, shape, shape);
    out.set(name, std::move(item));
  }
  return out;
}

std::vector<NodeType> builtin_node_types() {
  return {
      make_node_type<TensorSource>("core.tensor_source"), make_node_type<LogNode>("core.log"),
      make_node_type<NullSink>("core.null_sink"),         make_node_type<BatchNode>("core.batch"),
      make_node_type<UnbatchNode>("core.unbatch"),        store_reader_node_type()};
}

}  // namespace w2p
