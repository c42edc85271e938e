// w2p-inspect: what plugins are installed and how their node types are used.
//
//   w2p-inspect [--plugin-path DIR]... [--no-default-path] [--json] [NODE_ID|PLUGIN]
//
// Exit status: 0 ok, 1 bad command line, 2 unknown node type or plugin, 3 a plugin failed to
// load.
#include <cmath>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "core/suggest.hpp"
#include "nodes/builtin_nodes.hpp"
#include "plugin/plugin_catalog.hpp"
#include "w2p/error.hpp"

namespace w2p {
namespace {

constexpr int kExitUsage = 1;
constexpr int kExitUnknown = 2;
constexpr int kExitPluginError = 3;

constexpr const char* kUsage =
    "usage: w2p-inspect [--plugin-path DIR]... [--no-default-path] [--json] [NODE_ID|PLUGIN]\n"
    "\n"
    "Without an argument, lists the plugins found and their node types. With a node type id,\n"
    "documents its ports, options and execution; with a plugin name, lists its node types.\n"
    "\n"
    "  --plugin-path DIR   search DIR first (repeatable)\n"
    "  --no-default-path   search only the --plugin-path folders (not W2P_PLUGIN_PATH nor the\n"
    "                      folders next to libw2p_framework.so)\n"
    "  --json              machine-readable output\n";

struct CommandLine {
  std::vector<std::string> plugin_dirs;
  bool default_path = true;
  bool json = false;
  std::optional<std::string> subject;
};

/// Parses argv; returns an exit code when the program should stop right away.
std::optional<int> parse_command_line(int argc, char** argv, CommandLine* out) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::cout << kUsage;
      return 0;
    }
    if (arg == "--plugin-path" && i + 1 < argc) {
      out->plugin_dirs.emplace_back(argv[++i]);
    } else if (arg.rfind("--plugin-path=", 0) == 0) {
      out->plugin_dirs.push_back(arg.substr(std::string("--plugin-path=").size()));
    } else if (arg == "--no-default-path") {
      out->default_path = false;
    } else if (arg == "--json") {
      out->json = true;
    } else if (!arg.empty() && arg[0] == '-') {
      std::cerr << "w2p-inspect: unknown or incomplete option '" << arg << "'\n" << kUsage;
      return kExitUsage;
    } else if (out->subject) {
      std::cerr << "w2p-inspect: one NODE_ID or PLUGIN at most\n" << kUsage;
      return kExitUsage;
    } else {
      out->subject = arg;
    }
  }
  return std::nullopt;
}

// ---- text helpers ----

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

/// Bounds as a user writes them: 1 and 0.5, not 1.000000.
std::string number_text(double value) {
  std::ostringstream out;
  if (std::floor(value) == value && std::fabs(value) < 1e15) {
    out << static_cast<long long>(value);
  } else {
    out << value;
  }
  return out.str();
}

/// "[1, 1000]", ">= 1", "one of: a, b", "length 3" (joined), or "".
std::string constraint_text(const OptionSpec& spec) {
  std::vector<std::string> parts;
  if (spec.min && spec.max) {
    parts.push_back("in [" + number_text(*spec.min) + ", " + number_text(*spec.max) + "]");
  } else if (spec.min) {
    parts.push_back(">= " + number_text(*spec.min));
  } else if (spec.max) {
    parts.push_back("<= " + number_text(*spec.max));
  }
  if (!spec.choices.empty()) {
    std::string choices = "one of: ";
    for (std::size_t i = 0; i < spec.choices.size(); ++i) {
      choices += (i ? ", " : "") + spec.choices[i];
    }
    parts.push_back(choices);
  }
  if (spec.list_size) parts.push_back("length " + std::to_string(*spec.list_size));
  std::string text;
  for (std::size_t i = 0; i < parts.size(); ++i) text += (i ? ", " : "") + parts[i];
  return text;
}

/// Short type names for the options table and JSON (OptionType's to_string reads as prose).
const char* option_type_name(OptionType type) {
  switch (type) {
    case OptionType::kBool:
      return "bool";
    case OptionType::kInt:
      return "int";
    case OptionType::kFloat:
      return "float";
    case OptionType::kString:
      return "string";
    case OptionType::kPath:
      return "path";
    case OptionType::kEnum:
      return "enum";
    case OptionType::kIntList:
      return "int_list";
    case OptionType::kFloatList:
      return "float_list";
    case OptionType::kStringList:
      return "string_list";
  }
  return "?";
}

const char* cardinality_text(Cardinality c) {
  return c == Cardinality::kAny ? "any" : "one-to-one";
}

/// Aligned columns; the last column is not padded.
void print_table(std::ostream& out, const std::vector<std::vector<std::string>>& rows,
                 const std::string& indent) {
  std::vector<std::size_t> widths;
  for (const auto& row : rows) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (std::size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line = indent;
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out << line << "\n";
  }
}

std::string plugin_origin(const LoadedPlugin& plugin) {
  return plugin.path.empty() ? std::string("(built-in)") : plugin.path;
}

Options default_options(const NodeType& type) {
  Options options;
  for (const auto& spec : type.options) {
    if (spec.default_value) options.set(spec.key, *spec.default_value);
  }
  return options;
}

/// The contract for default options, or why there is none.
struct DeclaredContract {
  std::optional<Contract> contract;
  std::string error;
};
DeclaredContract declare_with_defaults(const RegisteredNodeType& node) {
  DeclaredContract result;
  try {
    result.contract = node.declare(default_options(node.type()));
  } catch (const Error& e) {
    result.error = e.message();
    std::string required;
    for (const auto& spec : node.type().options) {
      if (spec.required()) required += (required.empty() ? "" : ", ") + spec.key;
    }
    if (!required.empty()) result.error += " (required options: " + required + ")";
  }
  return result;
}

// ---- JSON ----

std::string json_string(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buffer[8];
          std::snprintf(buffer, sizeof buffer, "\\u%04x", c);
          out += buffer;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string json_number(double value) {
  if (!std::isfinite(value)) return "null";
  std::ostringstream out;
  out << std::setprecision(17) << value;
  return out.str();
}

template <typename T>
std::string json_list(const std::vector<T>& values) {
  std::string out = "[";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i) out += ", ";
    if constexpr (std::is_same_v<T, std::string>) {
      out += json_string(values[i]);
    } else if constexpr (std::is_same_v<T, double>) {
      out += json_number(values[i]);
    } else {
      out += std::to_string(values[i]);
    }
  }
  return out + "]";
}

std::string json_value(const OptionValue& value) {
  return std::visit(
      [](const auto& v) -> std::string {
        using V = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<V, bool>) {
          return v ? "true" : "false";
        } else if constexpr (std::is_same_v<V, std::int64_t>) {
          return std::to_string(v);
        } else if constexpr (std::is_same_v<V, double>) {
          return json_number(v);
        } else if constexpr (std::is_same_v<V, std::string>) {
          return json_string(v);
        } else {
          return json_list(v);
        }
      },
      value);
}

std::string json_optional_number(const std::optional<double>& value) {
  return value ? json_number(*value) : "null";
}

// ---- listing ----

void print_plugin_list(const PluginCatalog& catalog,
                       const std::vector<std::shared_ptr<const LoadedPlugin>>& plugins,
                       const std::vector<std::string>& search_path, bool with_extras) {
  if (plugins.empty()) std::cout << "No plugins found.\n";
  for (std::size_t i = 0; i < plugins.size(); ++i) {
    const LoadedPlugin& plugin = *plugins[i];
    if (i) std::cout << "\n";
    std::cout << plugin.name << " " << plugin.version << "  " << plugin_origin(plugin) << "\n";
    std::vector<std::vector<std::string>> rows;
    for (const auto& id : plugin.node_ids) {
      rows.push_back({id, first_line(catalog.find(id)->type().doc)});
    }
    print_table(std::cout, rows, "  ");
  }
  if (!with_extras) return;
  if (!catalog.skipped().empty()) {
    std::cout << "\nSkipped (a plugin of the same name was found earlier):\n";
    for (const auto& path : catalog.skipped()) std::cout << "  " << path << "\n";
  }
  std::cout << "\nSearch path:\n";
  for (const auto& dir : search_path) std::cout << "  " << dir << "\n";
}

void print_plugin_list_json(const PluginCatalog& catalog,
                            const std::vector<std::shared_ptr<const LoadedPlugin>>& plugins,
                            const std::vector<std::string>& search_path) {
  std::cout << "{\n  \"plugins\": [";
  for (std::size_t i = 0; i < plugins.size(); ++i) {
    const LoadedPlugin& plugin = *plugins[i];
    std::cout << (i ? "," : "") << "\n    {\"name\": " << json_string(plugin.name)
              << ", \"version\": " << json_string(plugin.version)
              << ", \"path\": " << json_string(plugin.path) << ", \"node_types\": [";
    for (std::size_t j = 0; j < plugin.node_ids.size(); ++j) {
      const std::string& id = plugin.node_ids[j];
      std::cout << (j ? ", " : "") << "{\"id\": " << json_string(id)
                << ", \"summary\": " << json_string(first_line(catalog.find(id)->type().doc))
                << "}";
    }
    std::cout << "]}";
  }
  std::cout << "\n  ],\n  \"skipped\": " << json_list(catalog.skipped())
            << ",\n  \"search_path\": " << json_list(search_path) << "\n}\n";
}

// ---- one node type ----

/// "{audio: f32[7,16000]}", or how the schema is decided when it is not fixed.
std::string port_schema_text(const PortSpec& port) {
  if (port.any_schema) return "(any schema)";
  if (!port.derived_from.empty()) return "(schema derived from input '" + port.derived_from + "')";
  return port.schema.str();
}

const char* port_kind_text(const PortSpec& port, bool is_output) {
  if (is_output) return "output";
  return port.kind == PortKind::kSide ? "side" : "input";
}

void print_node(const RegisteredNodeType& node) {
  const NodeType& type = node.type();
  const LoadedPlugin& plugin = node.plugin();
  std::cout << type.id << "\n  plugin: " << plugin.name << " " << plugin.version << "  "
            << plugin_origin(plugin) << "\n\n"
            << type.doc << "\n\n";

  const DeclaredContract declared = declare_with_defaults(node);
  std::cout << "Ports:\n";
  if (declared.contract) {
    const Contract& c = *declared.contract;
    std::vector<std::vector<std::string>> rows;
    for (int is_output = 0; is_output < 2; ++is_output) {
      for (const auto& port : is_output ? c.outputs() : c.inputs()) {
        rows.push_back({port_kind_text(port, is_output != 0), port.name, port_schema_text(port),
                        port.optional ? "optional" : "", port.doc});
      }
    }
    if (rows.empty()) std::cout << "  (none)\n";
    print_table(std::cout, rows, "  ");
  } else {
    std::cout << "  ports depend on options: " << declared.error << "\n";
  }

  std::cout << "\nOptions:\n";
  std::vector<std::vector<std::string>> rows;
  for (const auto& spec : type.options) {
    rows.push_back({spec.key, option_type_name(spec.type),
                    spec.default_value ? "default " + to_string(*spec.default_value) : "required",
                    constraint_text(spec), spec.doc});
  }
  if (rows.empty()) std::cout << "  (none)\n";
  print_table(std::cout, rows, "  ");

  if (declared.contract) {
    const Contract& c = *declared.contract;
    std::cout << "\nExecution:\n  concurrency: "
              << (c.concurrency() == 0 ? std::string("unlimited") : std::to_string(c.concurrency()))
              << "\n  ordered: " << (c.is_ordered() ? "yes" : "no")
              << "\n  cardinality: " << cardinality_text(c.get_cardinality())
              << "\n  source: " << (c.is_source() ? "yes" : "no")
              << "\n  repeatable: " << (c.is_repeatable() ? "yes" : "no") << "\n";
  }
}

void print_node_json(const RegisteredNodeType& node) {
  const NodeType& type = node.type();
  const LoadedPlugin& plugin = node.plugin();
  std::cout << "{\n  \"id\": " << json_string(type.id)
            << ",\n  \"plugin\": {\"name\": " << json_string(plugin.name)
            << ", \"version\": " << json_string(plugin.version)
            << ", \"path\": " << json_string(plugin.path)
            << "},\n  \"doc\": " << json_string(type.doc) << ",\n  \"options\": [";
  for (std::size_t i = 0; i < type.options.size(); ++i) {
    const OptionSpec& spec = type.options[i];
    std::cout << (i ? "," : "") << "\n    {\"key\": " << json_string(spec.key)
              << ", \"type\": " << json_string(option_type_name(spec.type))
              << ", \"required\": " << (spec.required() ? "true" : "false") << ", \"default\": "
              << (spec.default_value ? json_value(*spec.default_value) : "null")
              << ", \"min\": " << json_optional_number(spec.min)
              << ", \"max\": " << json_optional_number(spec.max)
              << ", \"choices\": " << json_list(spec.choices) << ", \"size\": "
              << (spec.list_size ? std::to_string(*spec.list_size) : std::string("null"))
              << ", \"doc\": " << json_string(spec.doc) << "}";
  }
  std::cout << "\n  ],\n";

  const DeclaredContract declared = declare_with_defaults(node);
  if (!declared.contract) {
    std::cout << "  \"ports\": null,\n  \"ports_error\": " << json_string(declared.error)
              << "\n}\n";
    return;
  }
  const Contract& c = *declared.contract;
  std::cout << "  \"ports\": [";
  bool first = true;
  for (int is_output = 0; is_output < 2; ++is_output) {
    for (const auto& port : is_output ? c.outputs() : c.inputs()) {
      std::cout << (first ? "" : ",")
                << "\n    {\"kind\": " << json_string(port_kind_text(port, is_output != 0))
                << ", \"name\": " << json_string(port.name)
                << ", \"schema\": " << json_string(port_schema_text(port)) << ", \"fields\": [";
      for (std::size_t f = 0; f < port.schema.fields.size(); ++f) {
        const FieldSpec& field = port.schema.fields[f];
        std::cout << (f ? ", " : "") << "{\"name\": " << json_string(field.name)
                  << ", \"spec\": " << json_string(field.spec.str())
                  << ", \"doc\": " << json_string(field.doc) << "}";
      }
      std::cout << "], \"optional\": " << (port.optional ? "true" : "false")
                << ", \"doc\": " << json_string(port.doc) << "}";
      first = false;
    }
  }
  std::cout << "\n  ],\n  \"ports_error\": null,\n  \"concurrency\": " << c.concurrency()
            << ",\n  \"ordered\": " << (c.is_ordered() ? "true" : "false")
            << ",\n  \"cardinality\": " << json_string(cardinality_text(c.get_cardinality()))
            << ",\n  \"source\": " << (c.is_source() ? "true" : "false")
            << ",\n  \"repeatable\": " << (c.is_repeatable() ? "true" : "false") << "\n}\n";
}

int run(int argc, char** argv) {
  CommandLine cmd;
  if (auto exit_code = parse_command_line(argc, argv, &cmd)) return *exit_code;

  const std::vector<std::string> search_path =
      cmd.default_path ? plugin_search_path(cmd.plugin_dirs) : cmd.plugin_dirs;
  PluginCatalog catalog;
  try {
    catalog.add_builtin(builtin_node_types());
    catalog.load_search_path(search_path);
  } catch (const Error& e) {
    std::cerr << e.format() << "\n";
    return kExitPluginError;
  }

  if (!cmd.subject) {
    if (cmd.json) {
      print_plugin_list_json(catalog, catalog.plugins(), search_path);
    } else {
      print_plugin_list(catalog, catalog.plugins(), search_path, true);
    }
    return 0;
  }
  if (const RegisteredNodeType* node = catalog.find(*cmd.subject)) {
    if (cmd.json) {
      print_node_json(*node);
    } else {
      print_node(*node);
    }
    return 0;
  }
  if (auto plugin = catalog.find_plugin(*cmd.subject)) {
    if (cmd.json) {
      print_plugin_list_json(catalog, {plugin}, search_path);
    } else {
      print_plugin_list(catalog, {plugin}, search_path, false);
    }
    return 0;
  }

  std::vector<std::string> candidates = catalog.node_ids();
  for (const auto& plugin : catalog.plugins()) candidates.push_back(plugin->name);
  Error unknown(ErrorKind::kConfig, "unknown node type or plugin '" + *cmd.subject + "'");
  if (const std::string hint = did_you_mean(*cmd.subject, candidates); !hint.empty()) {
    unknown.note(hint);
  }
  unknown.note("run w2p-inspect without arguments to list every node type");
  std::cerr << unknown.format() << "\n";
  return kExitUnknown;
}

}  // namespace
}  // namespace w2p

int main(int argc, char** argv) {
  try {
    return w2p::run(argc, argv);
  } catch (const w2p::Error& e) {
    std::cerr << e.format() << "\n";
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
  }
  return 1;
}
