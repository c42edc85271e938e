#include "graph/pipeline_graph.hpp"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>

#include "core/suggest.hpp"
#include "plugin/plugin_catalog.hpp"
#include "w2p/version.hpp"

namespace fs = std::filesystem;

namespace w2p {

std::string stable_hash(const std::string& text) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016" PRIx64, h);
  return buf;
}

int PipelineGraph::find_channel(const std::string& name) const {
  for (std::size_t i = 0; i < channels.size(); ++i) {
    if (channels[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

namespace {

std::string describe(const YAML::Node& n) {
  if (n.IsScalar()) return "'" + n.Scalar() + "'";
  if (n.IsSequence()) return "a list";
  if (n.IsMap()) return "a mapping";
  return "nothing";
}

template <typename T>
bool scalar_as(const YAML::Node& n, T* out) {
  if (!n.IsScalar()) return false;
  try {
    *out = n.as<T>();
    return true;
  } catch (const YAML::Exception&) {
    return false;
  }
}

bool in_range(const OptionSpec& spec, double v) {
  return !((spec.min && v < *spec.min) || (spec.max && v > *spec.max) || std::isnan(v));
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
  return out;
}

}  // namespace

bool convert_option(const OptionSpec& spec, const OptionEntry& entry, const std::string& node,
                    const std::string& type, OptionValue* out, std::vector<Error>* errors) {
  const YAML::Node& v = entry.value;
  auto fail = [&](const std::string& why) {
    Error e(ErrorKind::kConfig,
            "node '" + node + "' (" + type + "): option '" + spec.key + "': " + why);
    e.at(entry.value_location).in_node(node).note("expected " + spec.expectation());
    if (!spec.doc.empty()) e.note(spec.key + ": " + spec.doc);
    errors->push_back(std::move(e));
    return false;
  };
  auto bad_type = [&]() { return fail("got " + describe(v)); };
  auto number_list = [&](auto tag, auto* values) {
    using T = decltype(tag);
    if (!v.IsSequence()) return bad_type();
    for (const auto& item : v) {
      T x{};
      if (!scalar_as(item, &x)) return fail("list element " + describe(item) + " has wrong type");
      if (!in_range(spec, static_cast<double>(x))) {
        return fail("list element " + describe(item) + " is out of range");
      }
      values->push_back(x);
    }
    return true;
  };
  switch (spec.type) {
    case OptionType::kBool: {
      bool b = false;
      if (!scalar_as(v, &b)) return bad_type();
      *out = b;
      return true;
    }
    case OptionType::kInt: {
      std::int64_t i = 0;
      if (!scalar_as(v, &i)) return bad_type();
      if (!in_range(spec, static_cast<double>(i))) return fail(describe(v) + " is out of range");
      *out = i;
      return true;
    }
    case OptionType::kFloat: {
      double d = 0;
      if (!scalar_as(v, &d)) return bad_type();
      if (!in_range(spec, d)) return fail(describe(v) + " is out of range");
      *out = d;
      return true;
    }
    case OptionType::kString:
    case OptionType::kPath:
    case OptionType::kEnum: {
      if (!v.IsScalar()) return bad_type();
      std::string s = v.Scalar();
      if (spec.type == OptionType::kEnum &&
          std::find(spec.choices.begin(), spec.choices.end(), s) == spec.choices.end()) {
        const std::string hint = did_you_mean(s, spec.choices);
        fail(describe(v) + " is not a valid choice" + (hint.empty() ? "" : "; " + hint));
        return false;
      }
      if (spec.type == OptionType::kPath && !s.empty() && fs::path(s).is_relative()) {
        s = (fs::path(entry.base_dir) / s).lexically_normal().string();
      }
      *out = s;
      return true;
    }
    case OptionType::kIntList: {
      std::vector<std::int64_t> values;
      if (!number_list(std::int64_t{}, &values)) return false;
      if (spec.list_size && values.size() != *spec.list_size) {
        return fail("has " + std::to_string(values.size()) + " elements");
      }
      *out = values;
      return true;
    }
    case OptionType::kFloatList: {
      std::vector<double> values;
      if (!number_list(double{}, &values)) return false;
      if (spec.list_size && values.size() != *spec.list_size) {
        return fail("has " + std::to_string(values.size()) + " elements");
      }
      *out = values;
      return true;
    }
    case OptionType::kStringList: {
      if (!v.IsSequence()) return bad_type();
      std::vector<std::string> values;
      for (const auto& item : v) {
        if (!item.IsScalar()) return fail("list element " + describe(item) + " is not a string");
        values.push_back(item.Scalar());
      }
      if (spec.list_size && values.size() != *spec.list_size) {
        return fail("has " + std::to_string(values.size()) + " elements");
      }
      *out = values;
      return true;
    }
  }
  return bad_type();
}

namespace {

// Symbolic dims unify across connections: one class per "node/symbol", bound to at most one
// fixed size. Each binding remembers the connection that made it, for messages.
class DimUnifier {
 public:
  // Returns "" or a reason the two dims cannot be the same. `here` names the connection being
  // checked ("input 'left' (channel 'fours')").
  std::string unify(const std::string& a_node, const Dim& a, const std::string& b_node,
                    const Dim& b, const std::string& here) {
    if (a.is_ragged() || b.is_ragged()) {
      if (b.is_fixed() && a.is_ragged())
        return "varies per item but the consumer needs " + dim_text(b);
      return {};
    }
    if (a.is_fixed() && b.is_fixed()) {
      return a.size == b.size ? "" : dim_text(a) + " vs " + dim_text(b);
    }
    if (a.is_fixed()) return bind(find(b_node + "/" + b.symbol), a.size, b.symbol, here);
    if (b.is_fixed()) return bind(find(a_node + "/" + a.symbol), b.size, a.symbol, here);
    const std::string ra = find(a_node + "/" + a.symbol);
    const std::string rb = find(b_node + "/" + b.symbol);
    if (ra == rb) return {};
    const auto fa = fixed_.find(ra);
    const auto fb = fixed_.find(rb);
    if (fa != fixed_.end() && fb != fixed_.end() && fa->second.size != fb->second.size) {
      return a.symbol + " is " + std::to_string(fa->second.size) + " (bound by " +
             fa->second.where + ") but " + b.symbol + " is " + std::to_string(fb->second.size) +
             " (bound by " + fb->second.where + ")";
    }
    parent_[ra] = rb;
    if (fa != fixed_.end()) fixed_[rb] = fa->second;
    return {};
  }

 private:
  struct Binding {
    std::int64_t size;
    std::string where;
  };
  static std::string dim_text(const Dim& d) {
    return d.is_fixed() ? std::to_string(d.size) : d.symbol;
  }
  std::string find(const std::string& k) {
    auto it = parent_.find(k);
    if (it == parent_.end() || it->second == k) return k;
    return parent_[k] = find(it->second);
  }
  std::string bind(const std::string& root, std::int64_t size, const std::string& symbol,
                   const std::string& here) {
    const auto it = fixed_.find(root);
    if (it != fixed_.end() && it->second.size != size) {
      return symbol + " is " + std::to_string(it->second.size) + " from " + it->second.where +
             " but " + std::to_string(size) + " here";
    }
    if (it == fixed_.end()) fixed_[root] = {size, here};
    return {};
  }
  std::map<std::string, std::string> parent_;
  std::map<std::string, Binding> fixed_;
};

class GraphBuilder {
 public:
  GraphBuilder(PipelineConfig config, const PluginCatalog& catalog) : catalog_(catalog) {
    graph_.config = std::move(config);
  }

  PipelineGraph build() {
    resolve_nodes();
    wire_channels();
    // Schemas are checked even when other errors were found (all errors at once); nodes that
    // did not resolve take no part. A cycle leaves no order to derive schemas in.
    order_nodes();
    if (graph_.order.size() == graph_.nodes.size()) {
      propagate_epochs();
      check_schemas();
    }
    if (errors_.empty()) hash_channels();
    if (!errors_.empty()) throw ErrorList(std::move(errors_));
    return std::move(graph_);
  }

 private:
  Error& error(ErrorKind kind, const std::string& msg, const SourceLocation& loc,
               const std::string& node = {}) {
    errors_.push_back(Error(kind, msg).at(loc));
    if (!node.empty()) errors_.back().in_node(node);
    return errors_.back();
  }
  std::string label(const GraphNode& n) const {
    return "node '" + n.name + "' (" + (n.type ? n.type->type().id : "?") + ")";
  }

  void resolve_nodes() {
    std::map<std::string, SourceLocation> names;
    for (const auto& nc : graph_.config.nodes) {
      GraphNode node;
      node.name = nc.name;
      node.location = nc.location;
      node.epochs = nc.epochs.value_or(graph_.config.graph.epochs);
      if (!nc.name.empty()) {
        const auto [it, fresh] = names.emplace(nc.name, nc.location);
        if (!fresh) {
          error(ErrorKind::kConfig, "node '" + nc.name + "': duplicate node name", nc.location,
                nc.name)
              .note("first defined at " + it->second.str());
        }
      }
      node.type = nc.type.empty() ? nullptr : catalog_.find(nc.type);
      if (!nc.type.empty() && node.type == nullptr) {
        Error& e =
            error(ErrorKind::kConfig, "node '" + nc.name + "': unknown node type '" + nc.type + "'",
                  nc.type_location, nc.name);
        const std::string hint = did_you_mean(nc.type, catalog_.node_ids());
        if (!hint.empty()) e.note(hint);
        e.note("run w2p-inspect to list the node types of the loaded plugins");
      }
      if (node.type != nullptr) resolve_options(nc, node);
      graph_.nodes.push_back(std::move(node));
    }
  }

  void resolve_options(const NodeConfig& nc, GraphNode& node) {
    const NodeType& type = node.type->type();
    std::map<std::string, OptionValue> values;
    std::vector<std::string> keys;
    for (const auto& spec : type.options) keys.push_back(spec.key);
    const std::size_t errors_before = errors_.size();
    std::set<std::string> suggested;  // options a misspelt key was taken for
    for (const auto& entry : nc.options) {
      const auto spec = std::find_if(type.options.begin(), type.options.end(),
                                     [&](const OptionSpec& s) { return s.key == entry.key; });
      if (spec == type.options.end()) {
        Error& e = error(ErrorKind::kConfig, label(node) + ": unknown option '" + entry.key + "'",
                         entry.key_location, node.name);
        const std::string hint = did_you_mean(entry.key, keys);
        if (!hint.empty()) e.note(hint);
        e.note(keys.empty() ? type.id + " takes no options" : type.id + " options: " + join(keys));
        suggested.insert(closest_match(entry.key, keys));
        continue;
      }
      OptionValue v;
      if (convert_option(*spec, entry, node.name, type.id, &v, &errors_)) values[entry.key] = v;
    }
    for (const auto& spec : type.options) {
      if (values.count(spec.key) != 0) continue;
      if (spec.default_value) {
        values[spec.key] = *spec.default_value;
        continue;
      }
      if (std::any_of(nc.options.begin(), nc.options.end(),
                      [&](const OptionEntry& e) { return e.key == spec.key; })) {
        continue;  // given but invalid: already reported
      }
      if (suggested.count(spec.key) != 0) continue;  // misspelt: reported with did-you-mean
      Error& e =
          error(ErrorKind::kConfig, label(node) + ": missing required option '" + spec.key + "'",
                nc.location, node.name);
      e.note("expected " + spec.expectation());
      if (!spec.doc.empty()) e.note(spec.key + ": " + spec.doc);
    }
    if (errors_.size() != errors_before) {
      node.type = nullptr;  // no contract without valid options
      return;
    }
    node.options = Options(std::move(values));
    try {
      node.contract = node.type->declare(node.options);
    } catch (const Error& e) {
      Error copy = e;
      copy.at(nc.location).in_node(node.name);
      errors_.push_back(copy);
      node.type = nullptr;
    }
  }

  int channel_index(const std::string& name) {
    const int i = graph_.find_channel(name);
    if (i >= 0) return i;
    GraphChannel c;
    c.name = name;
    const auto it = graph_.config.channels.find(name);
    if (it != graph_.config.channels.end()) c.config = it->second;
    c.config.name = name;
    graph_.channels.push_back(std::move(c));
    return static_cast<int>(graph_.channels.size()) - 1;
  }

  static std::vector<std::string> port_names(const std::vector<PortSpec>& ports) {
    std::vector<std::string> names;
    for (const auto& p : ports) names.push_back(p.name);
    return names;
  }

  void wire_channels() {
    std::map<int, SourceLocation> produced_at;
    // Channels named as outputs of nodes that did not resolve (unknown type, bad options): their
    // producer's error covers them, so "no node produces" would only repeat it.
    std::set<std::string> unresolved_outputs;
    for (std::size_t ni = 0; ni < graph_.nodes.size(); ++ni) {
      GraphNode& node = graph_.nodes[ni];
      const NodeConfig& nc = graph_.config.nodes[ni];
      if (node.type == nullptr) {
        for (const auto& b : nc.outputs) unresolved_outputs.insert(b.channel);
        continue;
      }
      const Contract& c = node.contract;
      // Ports a misspelt port name was taken for: "not connected" would repeat that error.
      std::set<std::string> suggested;
      for (const auto& b : nc.outputs) {
        if (c.find_output(b.port) == nullptr) {
          suggested.insert(unknown_port(node, b, "output", c.outputs()));
          unresolved_outputs.insert(b.channel);
          continue;
        }
        const int ch = channel_index(b.channel);
        GraphChannel& channel = graph_.channels[static_cast<std::size_t>(ch)];
        if (channel.producer >= 0) {
          error(ErrorKind::kConfig,
                label(node) + ": output '" + b.port + "' writes channel '" + b.channel +
                    "', which is already produced by node '" +
                    graph_.nodes[static_cast<std::size_t>(channel.producer)].name + "' (port '" +
                    channel.producer_port + "')",
                b.location, node.name)
              .note("first produced at " + produced_at[ch].str())
              .note("each channel has exactly one producer; give the second a new name");
          continue;
        }
        channel.producer = static_cast<int>(ni);
        channel.producer_port = b.port;
        produced_at[ch] = b.location;
        node.outputs[b.port] = ch;
      }
      for (const auto& b : nc.inputs) {
        const PortSpec* p = c.find_input(b.port);
        if (p == nullptr) {
          suggested.insert(unknown_port(node, b, "input", c.inputs()));
          continue;
        }
        const int ch = channel_index(b.channel);
        auto& consumers = graph_.channels[static_cast<std::size_t>(ch)].consumers;
        consumers.push_back({static_cast<int>(ni), b.port, p->kind == PortKind::kSide, {}});
      }
      for (const auto& p : c.inputs()) {
        const bool bound = std::any_of(nc.inputs.begin(), nc.inputs.end(),
                                       [&](const PortBinding& b) { return b.port == p.name; });
        if (!bound && !p.optional && suggested.count(p.name) == 0) {
          error(ErrorKind::kConfig, label(node) + ": input port '" + p.name + "' is not connected",
                nc.location, node.name)
              .note("expected " + (p.any_schema ? std::string("any item") : p.schema.str()) +
                    (p.doc.empty() ? "" : ": " + p.doc))
              .note("add 'inputs: {" + p.name + ": <channel>}'");
        }
        if (!bound) continue;
        const auto& b = *std::find_if(nc.inputs.begin(), nc.inputs.end(),
                                      [&](const PortBinding& x) { return x.port == p.name; });
        const int ch = graph_.find_channel(b.channel);
        if (p.kind == PortKind::kSide) {
          node.side_ports.push_back(p.name);
          node.side_channels.push_back(ch);
        } else {
          node.stream_ports.push_back(p.name);
          node.stream_channels.push_back(ch);
        }
      }
      for (const auto& p : c.outputs()) {
        // Bound to a channel produced twice counts as connected: that error says it all.
        const bool bound = std::any_of(nc.outputs.begin(), nc.outputs.end(),
                                       [&](const PortBinding& b) { return b.port == p.name; });
        if (!bound && !p.optional && suggested.count(p.name) == 0) {
          error(ErrorKind::kConfig, label(node) + ": output port '" + p.name + "' is not connected",
                nc.location, node.name)
              .note("it gives " +
                    (p.derive ? std::string("items derived from input '") + p.derived_from + "'"
                              : p.schema.str()) +
                    (p.doc.empty() ? "" : ": " + p.doc))
              .note("add 'outputs: {" + p.name +
                    ": <channel>}' (feed it to core.null_sink to discard it)");
        }
      }
      if (c.is_source() && node.epochs > 1 && !c.is_repeatable() && nc.epochs) {
        error(ErrorKind::kConfig,
              label(node) + ": 'epochs: " + std::to_string(node.epochs) +
                  "' but this source cannot repeat its stream",
              nc.epochs_location, node.name);
      }
    }
    std::vector<std::string> produced;
    for (const auto& ch : graph_.channels) {
      if (ch.producer >= 0) produced.push_back(ch.name);
    }
    for (const auto& ch : graph_.channels) {
      if (ch.producer >= 0 || unresolved_outputs.count(ch.name) != 0) continue;
      for (const auto& consumer : ch.consumers) {
        const NodeConfig& nc = graph_.config.nodes[static_cast<std::size_t>(consumer.node)];
        SourceLocation where = nc.location;
        for (const auto& b : nc.inputs) {
          if (b.port == consumer.port) where = b.location;
        }
        Error& e = error(ErrorKind::kConfig,
                         "node '" + nc.name + "': input '" + consumer.port + "' reads channel '" +
                             ch.name + "', which no node produces",
                         where, nc.name);
        const std::string hint = did_you_mean(ch.name, produced);
        if (!hint.empty()) e.note(hint);
      }
    }
    for (const auto& [name, cc] : graph_.config.channels) {
      if (unresolved_outputs.count(name) != 0) continue;
      const int i = graph_.find_channel(name);
      if (i < 0 || graph_.channels[static_cast<std::size_t>(i)].producer < 0) {
        if (i >= 0 && !graph_.channels[static_cast<std::size_t>(i)].consumers.empty()) continue;
        Error& e =
            error(ErrorKind::kConfig,
                  "channel '" + name + "' is configured but no node produces it", cc.location);
        const std::string hint = did_you_mean(name, produced);
        if (!hint.empty()) e.note(hint);
      }
    }
  }

  // Returns the port the name was probably meant to be ("" if none is close).
  std::string unknown_port(const GraphNode& node, const PortBinding& b, const std::string& what,
                           const std::vector<PortSpec>& ports) {
    Error& e = error(ErrorKind::kConfig, label(node) + " has no " + what + " port '" + b.port + "'",
                     b.location, node.name);
    const std::string hint = did_you_mean(b.port, port_names(ports));
    if (!hint.empty()) e.note(hint);
    e.note(ports.empty() ? node.type->type().id + " has no " + what + "s"
                         : what + "s: " + join(port_names(ports)));
    return closest_match(b.port, port_names(ports));
  }

  void order_nodes() {
    const std::size_t n = graph_.nodes.size();
    std::vector<int> indegree(n, 0);
    std::vector<std::vector<int>> next(n);
    for (const auto& ch : graph_.channels) {
      if (ch.producer < 0) continue;
      for (const auto& c : ch.consumers) {
        next[static_cast<std::size_t>(ch.producer)].push_back(c.node);
        ++indegree[static_cast<std::size_t>(c.node)];
      }
    }
    std::vector<int> ready;
    for (std::size_t i = 0; i < n; ++i) {
      if (indegree[i] == 0) ready.push_back(static_cast<int>(i));
    }
    while (!ready.empty()) {
      const int i = ready.front();
      ready.erase(ready.begin());
      graph_.order.push_back(i);
      for (int j : next[static_cast<std::size_t>(i)]) {
        if (--indegree[static_cast<std::size_t>(j)] == 0) ready.push_back(j);
      }
    }
    if (graph_.order.size() == n) return;
    // Nodes left over are on a cycle or downstream of one; each has a left-over producer, so
    // walking producers from one of them must come back to a node already seen: that loop is a
    // cycle (the downstream nodes are not part of it and are not named).
    std::vector<std::vector<std::pair<int, std::string>>> producers(n);
    for (const auto& ch : graph_.channels) {
      if (ch.producer < 0) continue;
      for (const auto& c : ch.consumers) {
        producers[static_cast<std::size_t>(c.node)].emplace_back(ch.producer, ch.name);
      }
    }
    int cur = -1;
    for (std::size_t i = 0; i < n && cur < 0; ++i) {
      if (indegree[i] > 0) cur = static_cast<int>(i);
    }
    std::vector<int> path;         // path[i + 1] produces channel via[i], which path[i] reads
    std::vector<std::string> via;  // via.back(): from the repeated node to path.back()
    while (std::find(path.begin(), path.end(), cur) == path.end()) {
      path.push_back(cur);
      for (const auto& [p, channel] : producers[static_cast<std::size_t>(cur)]) {
        if (indegree[static_cast<std::size_t>(p)] > 0) {
          via.push_back(channel);
          cur = p;
          break;
        }
      }
    }
    const auto start =
        static_cast<std::size_t>(std::find(path.begin(), path.end(), cur) - path.begin());
    const GraphNode& head = graph_.nodes[static_cast<std::size_t>(cur)];
    std::string loop = head.name;
    for (std::size_t i = path.size(); i-- > start;) {
      loop += " -> (" + (i < via.size() ? via[i] : std::string("?")) + ") -> " +
              graph_.nodes[static_cast<std::size_t>(path[i])].name;
    }
    error(ErrorKind::kConfig, label(head) + " is part of a cycle: " + loop, head.location,
          head.name)
        .note("channels must flow one way; a node cannot (indirectly) consume its own output");
  }

  // Output schemas in topological order (derived outputs need their input's schema first),
  // then every consumer's fields against them.
  // A channel's schema is unknown when it has no (valid) producer, or derives from one that is
  // unknown; its consumers are not checked then (the cause is reported elsewhere).
  void check_schemas() {
    DimUnifier dims;
    std::vector<bool> known(graph_.channels.size(), false);
    for (int ni : graph_.order) {
      GraphNode& node = graph_.nodes[static_cast<std::size_t>(ni)];
      const NodeConfig& nc = graph_.config.nodes[static_cast<std::size_t>(ni)];
      for (std::size_t ci = 0; ci < graph_.channels.size(); ++ci) {
        if (!known[ci]) continue;
        GraphChannel& ch = graph_.channels[ci];
        for (auto& consumer : ch.consumers) {
          if (consumer.node == ni) check_connection(ch, consumer, node, nc, dims);
        }
      }
      for (const auto& [port, ch] : node.outputs) {
        const PortSpec* p = node.contract.find_output(port);
        GraphChannel& channel = graph_.channels[static_cast<std::size_t>(ch)];
        if (!p->derive) {
          channel.schema = p->schema;
          known[static_cast<std::size_t>(ch)] = true;
          continue;
        }
        const auto in =
            std::find(node.stream_ports.begin(), node.stream_ports.end(), p->derived_from);
        if (in == node.stream_ports.end()) {
          const PortSpec* from = node.contract.find_input(p->derived_from);
          if (from != nullptr && !from->optional) continue;  // reported as not connected
          error(ErrorKind::kInternal,
                label(node) + ": output '" + port + "' derives from unconnected input '" +
                    p->derived_from + "'",
                nc.location, node.name);
          continue;
        }
        const int src =
            node.stream_channels[static_cast<std::size_t>(in - node.stream_ports.begin())];
        if (!known[static_cast<std::size_t>(src)]) continue;
        channel.schema = p->derive(graph_.channels[static_cast<std::size_t>(src)].schema);
        known[static_cast<std::size_t>(ch)] = true;
      }
    }
  }

  void check_connection(GraphChannel& ch, GraphChannel::Consumer& consumer, const GraphNode& node,
                        const NodeConfig& nc, DimUnifier& dims) {
    const PortSpec* p = node.contract.find_input(consumer.port);
    if (p == nullptr || p->any_schema || ch.producer < 0) return;
    SourceLocation where = nc.location;
    for (const auto& b : nc.inputs) {
      if (b.port == consumer.port) where = b.location;
    }
    const GraphNode& producer = graph_.nodes[static_cast<std::size_t>(ch.producer)];
    const Schema& given = ch.schema;
    auto mismatch = [&](const std::string& what) -> Error& {
      return error(ErrorKind::kType,
                   label(node) + ": input '" + consumer.port + "' cannot read channel '" + ch.name +
                       "': " + what,
                   where, node.name)
          .note("channel '" + ch.name + "' (from node '" + producer.name + "', port '" +
                ch.producer_port + "') carries " + given.str())
          .note("input '" + consumer.port + "' expects " + p->schema.str());
    };
    const bool rename = p->schema.fields.size() == 1 && given.fields.size() == 1 &&
                        given.find(p->schema.fields[0].name) == nullptr;
    if (rename) consumer.rename_from = given.fields[0].name;
    for (const auto& want : p->schema.fields) {
      const FieldSpec* have = rename ? &given.fields[0] : given.find(want.name);
      if (have == nullptr) {
        mismatch("field '" + want.name + "' is missing");
        continue;
      }
      if (have->spec.dtype != want.spec.dtype) {
        mismatch("field '" + want.name + "' is " + to_string(have->spec.dtype) + ", expected " +
                 to_string(want.spec.dtype));
        continue;
      }
      if (want.spec.any_shape()) continue;
      if (have->spec.any_shape() || have->spec.dims.size() != want.spec.dims.size()) {
        mismatch("field '" + want.name + "' has shape " + have->spec.str() + ", expected " +
                 want.spec.str());
        continue;
      }
      for (std::size_t d = 0; d < want.spec.dims.size(); ++d) {
        const std::string why = dims.unify(
            producer.name, have->spec.dims[d], node.name, want.spec.dims[d],
            "node '" + node.name + "' input '" + consumer.port + "' (channel '" + ch.name + "')");
        if (!why.empty()) {
          mismatch("field '" + want.name + "' has shape " + have->spec.str() + ", expected " +
                   want.spec.str() + " (dim " + std::to_string(d) + ": " + why + ")");
          break;
        }
      }
    }
  }

  // A node downstream of sources is in their stream: its epochs (RunInfo::epochs, what a trainer
  // schedules over) are the most of its stream inputs' producers'. Side inputs do not count.
  void propagate_epochs() {
    for (int ni : graph_.order) {
      GraphNode& node = graph_.nodes[static_cast<std::size_t>(ni)];
      if (node.stream_channels.empty()) continue;  // a source keeps its own
      std::int64_t epochs = 1;
      for (int ch : node.stream_channels) {
        const int producer = graph_.channels[static_cast<std::size_t>(ch)].producer;
        if (producer >= 0) {
          epochs = std::max(epochs, graph_.nodes[static_cast<std::size_t>(producer)].epochs);
        }
      }
      node.epochs = epochs;
    }
  }

  // A channel's content depends on its producer and, recursively, everything upstream.
  void hash_channels() {
    std::string all;
    std::vector<std::string> node_hash(graph_.nodes.size());
    for (int ni : graph_.order) {
      const GraphNode& node = graph_.nodes[static_cast<std::size_t>(ni)];
      // The library's content, not only its version: a rebuilt plugin must not reuse stores
      // its older code wrote.
      std::string text = node.name + "|" + node.type->type().id + "@" +
                         node.type->plugin().version + "#" + library_digest(node) +
                         "|epochs=" + std::to_string(node.epochs) +
                         "|seed=" + std::to_string(graph_.config.graph.seed);
      for (const auto& [k, v] : node.options.values()) text += "|" + k + "=" + to_string(v);
      for (const auto& chs : {node.stream_channels, node.side_channels}) {
        for (int ch : chs) {
          const auto& c = graph_.channels[static_cast<std::size_t>(ch)];
          text += "|in:" + c.name + "=" + c.upstream_hash;
        }
      }
      node_hash[static_cast<std::size_t>(ni)] = stable_hash(text);
      all += text + "\n";
      for (const auto& [port, ch] : node.outputs) {
        graph_.channels[static_cast<std::size_t>(ch)].upstream_hash =
            stable_hash(node_hash[static_cast<std::size_t>(ni)] + "/" + port);
      }
    }
    graph_.config_hash = stable_hash(all);
  }

  std::string library_digest(const GraphNode& node) {
    const std::string& path = node.type->plugin().path;
    if (path.empty()) return W2P_VERSION_STRING;  // built-in: part of the framework
    auto it = digests_.find(path);
    if (it == digests_.end()) {
      std::ifstream in(path, std::ios::binary);
      std::stringstream bytes;
      bytes << in.rdbuf();
      it = digests_.emplace(path, stable_hash(bytes.str())).first;
    }
    return it->second;
  }

  const PluginCatalog& catalog_;
  std::map<std::string, std::string> digests_;
  PipelineGraph graph_;
  std::vector<Error> errors_;
};

}  // namespace

PipelineGraph build_graph(PipelineConfig config, const PluginCatalog& catalog) {
  return GraphBuilder(std::move(config), catalog).build();
}

}  // namespace w2p
