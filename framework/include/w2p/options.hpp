// Node options: what a node type accepts (OptionSpec) and the validated values (Options).
//
// A node type declares every option with type, default (or required), range and doc. The
// runtime validates the YAML against these declarations before any node is created and reports
// unknown keys (with did-you-mean), missing required options, wrong types and out-of-range
// values with the option's doc. Nodes then read values with typed getters that cannot fail
// for declared options. Paths are resolved against the directory of the YAML file that set them.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace w2p {

enum class OptionType : std::uint8_t {
  kBool,
  kInt,
  kFloat,
  kString,
  kPath,  ///< a string resolved against the YAML file's directory
  kEnum,  ///< a string out of `choices`
  kIntList,
  kFloatList,
  kStringList,
};
const char* to_string(OptionType type);

using OptionValue = std::variant<bool, std::int64_t, double, std::string, std::vector<std::int64_t>,
                                 std::vector<double>, std::vector<std::string>>;
/// YAML-like rendering of a value: true, 3, 0.5, "text", [1, 2].
std::string to_string(const OptionValue& value);

struct OptionSpec {
  std::string key;
  OptionType type = OptionType::kString;
  std::optional<OptionValue> default_value;  ///< none = required
  std::optional<double> min;                 ///< inclusive, numbers and list elements
  std::optional<double> max;                 ///< inclusive
  std::vector<std::string> choices;          ///< kEnum
  std::optional<std::size_t> list_size;      ///< exact length for list types
  std::string doc;

  // Fluent builders: OptionSpec::integer("repeats", 10).range(1, 1000).describe("...").
  static OptionSpec boolean(std::string key, std::optional<bool> def = std::nullopt);
  static OptionSpec integer(std::string key, std::optional<std::int64_t> def = std::nullopt);
  static OptionSpec number(std::string key, std::optional<double> def = std::nullopt);
  static OptionSpec string(std::string key, std::optional<std::string> def = std::nullopt);
  static OptionSpec path(std::string key, std::optional<std::string> def = std::nullopt);
  static OptionSpec choice(std::string key, std::vector<std::string> choices,
                           std::optional<std::string> def = std::nullopt);
  static OptionSpec int_list(std::string key,
                             std::optional<std::vector<std::int64_t>> def = std::nullopt);
  static OptionSpec float_list(std::string key,
                               std::optional<std::vector<double>> def = std::nullopt);
  static OptionSpec string_list(std::string key,
                                std::optional<std::vector<std::string>> def = std::nullopt);
  OptionSpec& range(std::optional<double> lo, std::optional<double> hi);
  OptionSpec& size(std::size_t n);
  OptionSpec& describe(std::string text);

  bool required() const { return !default_value.has_value(); }
  /// "integer in [1, 1000], default 10": what the validator prints as the expectation.
  std::string expectation() const;
};

/// Validated option values of one node. Getters throw w2p::Error (kInternal) for an
/// undeclared key or a type that differs from the declaration: that is a node bug.
class Options {
 public:
  Options() = default;
  explicit Options(std::map<std::string, OptionValue> values) : values_(std::move(values)) {}

  bool has(std::string_view key) const;
  bool get_bool(std::string_view key) const;
  std::int64_t get_int(std::string_view key) const;
  double get_float(std::string_view key) const;               ///< also accepts an integer value
  const std::string& get_string(std::string_view key) const;  ///< kString, kPath, kEnum
  std::vector<std::int64_t> get_int_list(std::string_view key) const;
  std::vector<double> get_float_list(std::string_view key) const;
  std::vector<std::string> get_string_list(std::string_view key) const;
  const OptionValue& raw(std::string_view key) const;
  const std::map<std::string, OptionValue>& values() const { return values_; }
  void set(const std::string& key, OptionValue value) { values_[key] = std::move(value); }

 private:
  std::map<std::string, OptionValue> values_;
};

}  // namespace w2p
