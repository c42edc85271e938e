#include "w2p/options.hpp"

#include <cmath>
#include <sstream>

#include "w2p/error.hpp"

namespace w2p {

const char* to_string(OptionType type) {
  switch (type) {
    case OptionType::kBool:
      return "boolean";
    case OptionType::kInt:
      return "integer";
    case OptionType::kFloat:
      return "number";
    case OptionType::kString:
      return "string";
    case OptionType::kPath:
      return "path";
    case OptionType::kEnum:
      return "one of";
    case OptionType::kIntList:
      return "list of integers";
    case OptionType::kFloatList:
      return "list of numbers";
    case OptionType::kStringList:
      return "list of strings";
  }
  return "?";
}

namespace {

std::string number_text(double v) {
  std::ostringstream out;
  out << v;
  return out.str();
}

template <typename T>
std::string list_text(const std::vector<T>& values, bool quote) {
  std::ostringstream out;
  out << "[";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out << ", ";
    if (quote) {
      out << '"' << values[i] << '"';
    } else {
      out << values[i];
    }
  }
  out << "]";
  return out.str();
}

OptionSpec make(std::string key, OptionType type, std::optional<OptionValue> def) {
  OptionSpec s;
  s.key = std::move(key);
  s.type = type;
  s.default_value = std::move(def);
  return s;
}

template <typename T>
std::optional<OptionValue> wrap(const std::optional<T>& v) {
  if (!v) return std::nullopt;
  return OptionValue(*v);
}

}  // namespace

std::string to_string(const OptionValue& value) {
  struct Visitor {
    std::string operator()(bool b) const { return b ? "true" : "false"; }
    std::string operator()(std::int64_t i) const { return std::to_string(i); }
    std::string operator()(double d) const { return number_text(d); }
    std::string operator()(const std::string& s) const { return "\"" + s + "\""; }
    std::string operator()(const std::vector<std::int64_t>& v) const { return list_text(v, false); }
    std::string operator()(const std::vector<double>& v) const { return list_text(v, false); }
    std::string operator()(const std::vector<std::string>& v) const { return list_text(v, true); }
  };
  return std::visit(Visitor{}, value);
}

OptionSpec OptionSpec::boolean(std::string key, std::optional<bool> def) {
  return make(std::move(key), OptionType::kBool, wrap(def));
}
OptionSpec OptionSpec::integer(std::string key, std::optional<std::int64_t> def) {
  return make(std::move(key), OptionType::kInt, wrap(def));
}
OptionSpec OptionSpec::number(std::string key, std::optional<double> def) {
  return make(std::move(key), OptionType::kFloat, wrap(def));
}
OptionSpec OptionSpec::string(std::string key, std::optional<std::string> def) {
  return make(std::move(key), OptionType::kString, wrap(def));
}
OptionSpec OptionSpec::path(std::string key, std::optional<std::string> def) {
  return make(std::move(key), OptionType::kPath, wrap(def));
}
OptionSpec OptionSpec::choice(std::string key, std::vector<std::string> choices,
                              std::optional<std::string> def) {
  OptionSpec s = make(std::move(key), OptionType::kEnum, wrap(def));
  s.choices = std::move(choices);
  return s;
}
OptionSpec OptionSpec::int_list(std::string key, std::optional<std::vector<std::int64_t>> def) {
  return make(std::move(key), OptionType::kIntList, wrap(def));
}
OptionSpec OptionSpec::float_list(std::string key, std::optional<std::vector<double>> def) {
  return make(std::move(key), OptionType::kFloatList, wrap(def));
}
OptionSpec OptionSpec::string_list(std::string key, std::optional<std::vector<std::string>> def) {
  return make(std::move(key), OptionType::kStringList, wrap(def));
}
OptionSpec& OptionSpec::range(std::optional<double> lo, std::optional<double> hi) {
  min = lo;
  max = hi;
  return *this;
}
OptionSpec& OptionSpec::size(std::size_t n) {
  list_size = n;
  return *this;
}
OptionSpec& OptionSpec::describe(std::string text) {
  doc = std::move(text);
  return *this;
}

std::string OptionSpec::expectation() const {
  std::ostringstream out;
  out << to_string(type);
  if (type == OptionType::kEnum) out << " " << list_text(choices, true);
  if (list_size) out << " of length " << *list_size;
  if (min || max) {
    out << (type == OptionType::kIntList || type == OptionType::kFloatList ? " with elements" : "");
    if (min && max) {
      out << " in [" << number_text(*min) << ", " << number_text(*max) << "]";
    } else if (min) {
      out << " >= " << number_text(*min);
    } else {
      out << " <= " << number_text(*max);
    }
  }
  if (default_value) {
    out << ", default " << to_string(*default_value);
  } else {
    out << ", required";
  }
  return out.str();
}

bool Options::has(std::string_view key) const { return values_.count(std::string(key)) != 0; }

const OptionValue& Options::raw(std::string_view key) const {
  auto it = values_.find(std::string(key));
  if (it == values_.end()) {
    throw Error(ErrorKind::kInternal, "option '" + std::string(key) + "' is not declared");
  }
  return it->second;
}

namespace {
template <typename T>
const T& typed(const Options& o, std::string_view key, const char* what) {
  const auto& v = o.raw(key);
  if (const T* p = std::get_if<T>(&v)) return *p;
  throw Error(ErrorKind::kInternal,
              "option '" + std::string(key) + "' read as " + what + " but holds " + to_string(v));
}
}  // namespace

bool Options::get_bool(std::string_view key) const { return typed<bool>(*this, key, "boolean"); }
std::int64_t Options::get_int(std::string_view key) const {
  return typed<std::int64_t>(*this, key, "integer");
}
double Options::get_float(std::string_view key) const {
  const auto& v = raw(key);
  if (const auto* i = std::get_if<std::int64_t>(&v)) return static_cast<double>(*i);
  return typed<double>(*this, key, "number");
}
const std::string& Options::get_string(std::string_view key) const {
  return typed<std::string>(*this, key, "string");
}
std::vector<std::int64_t> Options::get_int_list(std::string_view key) const {
  return typed<std::vector<std::int64_t>>(*this, key, "list of integers");
}
std::vector<double> Options::get_float_list(std::string_view key) const {
  const auto& v = raw(key);
  if (const auto* i = std::get_if<std::vector<std::int64_t>>(&v)) {
    return std::vector<double>(i->begin(), i->end());
  }
  return typed<std::vector<double>>(*this, key, "list of numbers");
}
std::vector<std::string> Options::get_string_list(std::string_view key) const {
  return typed<std::vector<std::string>>(*this, key, "list of strings");
}

}  // namespace w2p
