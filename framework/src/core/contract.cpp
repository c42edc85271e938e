#include "w2p/contract.hpp"

#include "w2p/error.hpp"

namespace w2p {
namespace {

Schema single_field(const Port& port, TensorSpec spec, const std::string& doc) {
  return Schema{{FieldSpec{port.name, std::move(spec), doc}}};
}

PortSpec make_port(const Port& port, Schema schema, std::string doc, PortKind kind) {
  PortSpec p;
  p.name = port.name;
  p.schema = std::move(schema);
  p.doc = std::move(doc);
  p.kind = kind;
  return p;
}

}  // namespace

Contract& Contract::input(Port port, Schema schema, std::string doc) {
  inputs_.push_back(make_port(port, std::move(schema), std::move(doc), PortKind::kStream));
  last_is_output_ = false;
  return *this;
}
Contract& Contract::input(Port port, TensorSpec spec, std::string doc) {
  return input(port, single_field(port, std::move(spec), doc), doc);
}
Contract& Contract::side_input(Port port, Schema schema, std::string doc) {
  inputs_.push_back(make_port(port, std::move(schema), std::move(doc), PortKind::kSide));
  last_is_output_ = false;
  return *this;
}
Contract& Contract::side_input(Port port, TensorSpec spec, std::string doc) {
  return side_input(port, single_field(port, std::move(spec), doc), doc);
}
Contract& Contract::output(Port port, Schema schema, std::string doc) {
  outputs_.push_back(make_port(port, std::move(schema), std::move(doc), PortKind::kStream));
  last_is_output_ = true;
  return *this;
}
Contract& Contract::output(Port port, TensorSpec spec, std::string doc) {
  return output(port, single_field(port, std::move(spec), doc), doc);
}
Contract& Contract::input_any(Port port, std::string doc) {
  input(port, Schema{}, std::move(doc));
  inputs_.back().any_schema = true;
  return *this;
}
Contract& Contract::output_from(Port port, Port from, std::function<Schema(const Schema&)> derive,
                                std::string doc) {
  output(port, Schema{}, std::move(doc));
  outputs_.back().derived_from = from.name;
  outputs_.back().derive = std::move(derive);
  return *this;
}
Contract& Contract::optional() {
  auto& list = last_is_output_ ? outputs_ : inputs_;
  W2P_ASSERT(!list.empty(), "Contract::optional() before any port");
  list.back().optional = true;
  return *this;
}
Contract& Contract::max_concurrency(int n) {
  concurrency_ = n;
  return *this;
}
Contract& Contract::ordered() {
  ordered_ = true;
  return *this;
}
Contract& Contract::cardinality(Cardinality c) {
  cardinality_ = c;
  return *this;
}
Contract& Contract::repeatable() {
  repeatable_ = true;
  return *this;
}

const PortSpec* Contract::find_input(std::string_view name) const {
  for (const auto& p : inputs_) {
    if (p.name == name) return &p;
  }
  return nullptr;
}
const PortSpec* Contract::find_output(std::string_view name) const {
  for (const auto& p : outputs_) {
    if (p.name == name) return &p;
  }
  return nullptr;
}
bool Contract::is_source() const {
  for (const auto& p : inputs_) {
    if (p.kind == PortKind::kStream) return false;
  }
  return true;
}

}  // namespace w2p
