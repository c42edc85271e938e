#include "config/pipeline_config.hpp"

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "core/suggest.hpp"

namespace fs = std::filesystem;

namespace w2p {

SourceLocation location_of(const YAML::Node& node, const std::string& file) {
  SourceLocation loc;
  loc.file = file;
  const YAML::Mark mark = node.Mark();
  if (!mark.is_null()) {
    loc.line = mark.line + 1;
    loc.column = mark.column + 1;
  }
  return loc;
}

std::string canonical_yaml(const YAML::Node& node) {
  YAML::Emitter out;
  out << YAML::Flow << node;
  return out.c_str();
}

const NodeConfig* PipelineConfig::find_node(const std::string& name) const {
  for (const auto& n : nodes) {
    if (n.name == name) return &n;
  }
  return nullptr;
}

namespace {

const char* const kCommandLine = "<command line>";
const std::vector<std::string> kTopKeys = {"include",  "vars",  "graph", "seed",
                                           "channels", "nodes", "stages"};
const std::vector<std::string> kStageKeys = {"pipeline", "vars", "run_dir"};
const std::vector<std::string> kGraphKeys = {"seed",   "threads", "max_in_flight",
                                             "epochs", "run_dir", "plugin_paths"};
const std::vector<std::string> kNodeKeys = {"name",   "type",    "options",
                                            "inputs", "outputs", "epochs"};
const std::vector<std::string> kChannelKeys = {"store", "compression", "chunk_items"};

std::string yaml_kind(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar:
      return "'" + n.Scalar() + "'";
    case YAML::NodeType::Null:
      return "nothing";
    default:
      return "an undefined value";
  }
}

class Loader {
 public:
  explicit Loader(const ConfigOverrides& overrides) : overrides_(overrides) {}

  PipelineConfig load(const std::string& path) {
    config_.file = fs::absolute(path).lexically_normal().string();
    std::vector<Doc> docs;
    collect(config_.file, {}, {}, docs);
    // A file that could not be read leaves nothing sound to check the rest against.
    if (unreadable_) throw ErrorList(std::move(errors_));
    for (const auto& d : docs) read_vars(d);
    for (const auto& [k, v] : overrides_.vars) config_.vars[k] = v;
    for (const auto& d : docs) read_graph(d);
    finish_run_dir();
    config_.vars["run_dir"] = config_.graph.run_dir;
    for (const auto& d : docs) read_channels(d);
    for (const auto& d : docs) read_stages(d);
    for (const auto& d : docs) read_nodes(d);
    if (config_.nodes.empty() && errors_.empty()) {
      // Nothing to run is a mistake (a misplaced 'nodes:', a file of comments), not a success.
      SourceLocation where{config_.file, 1, 1};
      for (const auto& kv : docs.back().root) {
        if (kv.first.Scalar() == "nodes") where = loc(kv.first, docs.back());
      }
      error("the pipeline has no nodes", where)
          .note("add 'nodes:' with a list of {name, type, ...} mappings");
    }
    apply_sets();
    if (!errors_.empty()) throw ErrorList(std::move(errors_));
    return std::move(config_);
  }

 private:
  struct Doc {
    std::string file;
    std::string dir;
    YAML::Node root;
  };

  Error& error(const std::string& message, SourceLocation loc) {
    errors_.push_back(Error(ErrorKind::kConfig, set_context_ + message).at(std::move(loc)));
    return errors_.back();
  }
  // A --set value has no line of its own (its YAML mark would read 1:1).
  SourceLocation loc(const YAML::Node& n, const Doc& d) const {
    return d.file == kCommandLine ? SourceLocation{d.file, 0, 0} : location_of(n, d.file);
  }

  // Reads `file` and, depth first, the files it includes (those come before it). `from` is the
  // include entry naming `file` (unknown for the top-level file). A file that cannot be read or
  // parsed is reported (at the include entry that names it) and sets unreadable_.
  void collect(const std::string& file, std::vector<std::string> chain, const SourceLocation& from,
               std::vector<Doc>& docs) {
    auto fail = [&](Error e) {
      if (from.known()) e.at(from);
      errors_.push_back(std::move(e));
      unreadable_ = true;
    };
    for (const auto& f : chain) {
      if (f == file) {
        std::string cycle;
        for (const auto& c : chain) cycle += c + " -> ";
        fail(Error(ErrorKind::kConfig, "include cycle: " + cycle + file)
                 .note("a file may not include itself, directly or through other files"));
        return;
      }
    }
    // A file included on two paths (a diamond) is read once, where it first appears.
    for (const auto& d : docs) {
      if (d.file == file) return;
    }
    chain.push_back(file);
    std::ifstream in(file);
    if (!in) {
      fail(Error(ErrorKind::kIo, chain.size() > 1 ? "cannot read included file '" + file + "'"
                                                  : "cannot read pipeline file '" + file + "'"));
      return;
    }
    std::stringstream text;
    text << in.rdbuf();
    Doc doc{file, fs::path(file).parent_path().string(), {}};
    try {
      doc.root = YAML::Load(text.str());
    } catch (const YAML::ParserException& e) {
      SourceLocation l{file, e.mark.line + 1, e.mark.column + 1};
      Error err = Error(ErrorKind::kConfig, "YAML syntax: " + e.msg).at(l);
      // yaml-cpp's messages name the symptom; say what usually causes it.
      if (e.msg.find("tab") != std::string::npos) {
        err.note("indent with spaces: YAML does not allow tabs there");
      } else if (e.msg.find("flow") != std::string::npos) {
        err.note("check that every '[' and '{' before this point is closed");
      } else if (e.msg.find("end of map") != std::string::npos ||
                 e.msg.find("end of sequence") != std::string::npos) {
        err.note("check the indentation of this line against the lines above it");
      }
      if (from.known()) err.note("included from " + from.str());
      errors_.push_back(std::move(err));
      unreadable_ = true;
      return;
    }
    if (doc.root.IsNull()) doc.root = YAML::Node(YAML::NodeType::Map);
    if (!doc.root.IsMap()) {
      error("a pipeline file must be a mapping, got " + yaml_kind(doc.root), loc(doc.root, doc))
          .note("expected keys: include, vars, graph, channels, nodes, stages");
      unreadable_ = true;
      return;
    }
    check_keys(doc.root, doc, kTopKeys, "top-level key");
    if (const auto inc = doc.root["include"]) {
      std::vector<YAML::Node> items;
      if (inc.IsSequence()) {
        for (const auto& i : inc) items.push_back(i);
      } else {
        items.push_back(inc);
      }
      for (const auto& i : items) {
        if (!i.IsScalar()) {
          error("'include' expects file names, got " + yaml_kind(i), loc(i, doc));
          continue;
        }
        fs::path p = i.Scalar();
        if (p.is_relative()) p = fs::path(doc.dir) / p;
        collect(p.lexically_normal().string(), chain, loc(i, doc), docs);
      }
    }
    docs.push_back(std::move(doc));
  }

  // Unknown and duplicate keys of a mapping (yaml-cpp keeps duplicates; we reject them).
  // `context` ("node 'src': ") names the mapping's owner in messages. Returns the known keys
  // that unknown ones were probably meant to be.
  std::set<std::string> check_keys(const YAML::Node& map, const Doc& d,
                                   const std::vector<std::string>& known, const std::string& what,
                                   const std::string& context = {}) {
    std::set<std::string> meant;
    std::set<std::string> seen;
    for (const auto& kv : map) {
      const std::string key = kv.first.Scalar();
      if (!seen.insert(key).second) {
        error(context + "duplicate " + what + " '" + key + "'", loc(kv.first, d))
            .note("each key may appear once in a mapping");
        continue;
      }
      if (std::find(known.begin(), known.end(), key) == known.end()) {
        Error& e = error(context + "unknown " + what + " '" + key + "'", loc(kv.first, d));
        const std::string hint = did_you_mean(key, known);
        if (!hint.empty()) e.note(hint);
        std::string list;
        for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
        e.note("expected one of: " + list);
        meant.insert(closest_match(key, known));
      }
    }
    return meant;
  }

  // `stages:` a list of pipeline paths or {pipeline, vars, run_dir} mappings, relative to the
  // file that lists them; values may use ${vars} of this pipeline.
  void read_stages(const Doc& d) {
    const auto stages = d.root["stages"];
    if (!stages || stages.IsNull()) return;
    if (!stages.IsSequence()) {
      error("'stages' must be a list of pipeline files, got " + yaml_kind(stages), loc(stages, d))
          .note(
              "expected e.g. stages: [simulate.yaml, {pipeline: pretrain_ngcc.yaml, vars: "
              "{epochs: 2}}]");
      return;
    }
    auto resolve = [&](const std::string& path) {
      fs::path p = path;
      if (p.is_relative()) p = fs::path(d.dir) / p;
      return p.lexically_normal().string();
    };
    for (const auto& entry : stages) {
      StageConfig stage;
      stage.location = loc(entry, d);
      // (Constructed, not assigned: assigning a YAML::Node overwrites the node it refers to.)
      const YAML::Node path_node = entry.IsMap() ? entry["pipeline"] : entry;
      if (entry.IsMap()) {
        check_keys(entry, d, kStageKeys, "key", "stage: ");
        if (!path_node) {
          error("stage without 'pipeline'", stage.location)
              .note("expected {pipeline: file.yaml, vars: {...}, run_dir: dir}");
          continue;
        }
        if (const auto vars = entry["vars"]) {
          if (!vars.IsMap()) {
            error("stage 'vars' must be a mapping, got " + yaml_kind(vars), loc(vars, d));
          } else {
            for (const auto& kv : vars) {
              stage.vars[kv.first.Scalar()] = scalar_string(kv.second, d, "stage variable");
            }
          }
        }
        if (const auto dir = entry["run_dir"]) {
          stage.run_dir = resolve(scalar_string(dir, d, "stage 'run_dir'"));
        }
      }
      const std::string path = scalar_string(path_node, d, "stage pipeline");
      if (path.empty()) continue;
      stage.pipeline = resolve(path);
      if (stage.pipeline == config_.file) {
        error("a pipeline cannot be its own stage", stage.location);
        continue;
      }
      if (!fs::exists(stage.pipeline)) {
        error("stage pipeline '" + stage.pipeline + "' does not exist", loc(path_node, d));
        continue;
      }
      config_.stages.push_back(std::move(stage));
    }
  }

  // ${name} substitution in a scalar string.
  bool substitute(std::string& text, const SourceLocation& where) {
    std::string out;
    std::size_t pos = 0;
    while (true) {
      const std::size_t start = text.find("${", pos);
      if (start == std::string::npos) break;
      const std::size_t end = text.find('}', start);
      if (end == std::string::npos) {
        error("unterminated '${' in '" + text + "'", where);
        return false;
      }
      const std::string name = text.substr(start + 2, end - start - 2);
      out += text.substr(pos, start - pos);
      const auto it = config_.vars.find(name);
      if (it == config_.vars.end()) {
        std::vector<std::string> names;
        for (const auto& [k, v] : config_.vars) names.push_back(k);
        Error& e = error("undefined variable '${" + name + "}'", where);
        const std::string hint = did_you_mean(name, names);
        if (!hint.empty()) e.note(hint);
        e.note("define it under 'vars:' or pass --var " + name + "=VALUE");
        return false;
      }
      out += it->second;
      pos = end + 1;
    }
    if (pos == 0) return true;
    text = out + text.substr(pos);
    return true;
  }

  // Substitutes variables in every scalar below `node` (a deep copy; the parsed file stays).
  YAML::Node substituted(const YAML::Node& node, const Doc& d) {
    if (node.IsScalar()) {
      std::string s = node.Scalar();
      if (s.find("${") == std::string::npos) return node;
      substitute(s, loc(node, d));
      return YAML::Node(s);  // yaml-cpp scalars are untyped: "3" still reads as an integer
    }
    if (node.IsSequence()) {
      YAML::Node out(YAML::NodeType::Sequence);
      for (const auto& c : node) out.push_back(substituted(c, d));
      return node_with_mark(out, node);
    }
    if (node.IsMap()) {
      YAML::Node out(YAML::NodeType::Map);
      for (const auto& kv : node) out[kv.first.Scalar()] = substituted(kv.second, d);
      return node_with_mark(out, node);
    }
    return node;
  }
  // New nodes lose their marks; keep the original for locations when nothing changed.
  static YAML::Node node_with_mark(const YAML::Node& rebuilt, const YAML::Node& original) {
    return canonical_yaml(rebuilt) == canonical_yaml(original) ? original : rebuilt;
  }

  std::string scalar_string(const YAML::Node& n, const Doc& d, const std::string& what) {
    if (!n.IsScalar()) {
      error(what + " must be a string, got " + yaml_kind(n), loc(n, d));
      return {};
    }
    std::string s = n.Scalar();
    substitute(s, loc(n, d));
    return s;
  }

  template <typename T>
  bool integer(const YAML::Node& n, const Doc& d, const std::string& what, T lo, T* out) {
    std::string s = n.IsScalar() ? n.Scalar() : std::string();
    substitute(s, loc(n, d));
    try {
      std::size_t used = 0;
      const long long v = std::stoll(s, &used);
      if (used == s.size() && v >= static_cast<long long>(lo)) {
        *out = static_cast<T>(v);
        return true;
      }
    } catch (const std::exception&) {
    }
    error(what + ": expected an integer >= " + std::to_string(lo) + ", got " + yaml_kind(n),
          loc(n, d));
    return false;
  }

  void read_vars(const Doc& d) {
    const auto vars = d.root["vars"];
    if (!vars || vars.IsNull()) return;  // an empty section is no section
    if (!vars.IsMap()) {
      error("'vars' must be a mapping of names to values", loc(vars, d));
      return;
    }
    for (const auto& kv : vars) {
      if (!kv.second.IsScalar()) {
        error("variable '" + kv.first.Scalar() + "' must be a scalar", loc(kv.second, d));
        continue;
      }
      config_.vars[kv.first.Scalar()] = kv.second.Scalar();
    }
  }

  void read_graph_key(const std::string& key, const YAML::Node& v, const Doc& d) {
    GraphSettings& g = config_.graph;
    if (key == "seed") {
      integer<std::uint64_t>(v, d, "graph.seed", 0, &g.seed);
    } else if (key == "threads") {
      if (v.IsScalar() && v.Scalar() == "auto") {
        g.threads = 0;
      } else {
        integer<int>(v, d, "graph.threads ('auto' or a count)", 1, &g.threads);
      }
    } else if (key == "max_in_flight") {
      integer<std::int64_t>(v, d, "graph.max_in_flight", 1, &g.max_in_flight);
    } else if (key == "epochs") {
      integer<std::int64_t>(v, d, "graph.epochs", 1, &g.epochs);
    } else if (key == "run_dir") {
      if (!overrides_.run_dir.empty()) return;
      fs::path p = scalar_string(v, d, "graph.run_dir");
      if (p.is_relative()) p = fs::path(d.dir) / p;
      g.run_dir = p.lexically_normal().string();
    } else if (key == "plugin_paths") {
      std::vector<YAML::Node> items;
      if (v.IsSequence()) {
        for (const auto& i : v) items.push_back(i);
      } else {
        items.push_back(v);
      }
      for (const auto& i : items) {
        fs::path p = scalar_string(i, d, "graph.plugin_paths entry");
        if (p.is_relative()) p = fs::path(d.dir) / p;
        g.plugin_paths.push_back(p.lexically_normal().string());
      }
    }
  }

  void read_graph(const Doc& d) {
    if (const auto seed = d.root["seed"]) read_graph_key("seed", seed, d);
    const auto graph = d.root["graph"];
    if (!graph || graph.IsNull()) return;  // an empty section is no section
    if (!graph.IsMap()) {
      error("'graph' must be a mapping", loc(graph, d));
      return;
    }
    check_keys(graph, d, kGraphKeys, "graph setting");
    for (const auto& kv : graph) read_graph_key(kv.first.Scalar(), kv.second, d);
  }

  void finish_run_dir() {
    if (!overrides_.run_dir.empty()) {
      config_.graph.run_dir = fs::absolute(overrides_.run_dir).lexically_normal().string();
    } else if (config_.graph.run_dir.empty()) {
      const std::string stem = fs::path(config_.file).stem().string();
      config_.graph.run_dir = (fs::current_path() / "runs" / stem).lexically_normal().string();
    }
  }

  void read_channels(const Doc& d) {
    const auto channels = d.root["channels"];
    if (!channels || channels.IsNull()) return;  // an empty section is no section
    if (!channels.IsMap()) {
      error("'channels' must be a mapping of channel names to settings", loc(channels, d));
      return;
    }
    for (const auto& kv : channels) {
      ChannelConfig c;
      c.name = kv.first.Scalar();
      c.location = loc(kv.first, d);
      const YAML::Node& s = kv.second;
      if (s.IsNull()) {
        config_.channels[c.name] = c;
        continue;
      }
      if (!s.IsMap()) {
        error("channel '" + c.name + "' settings must be a mapping", loc(s, d))
            .note("e.g. " + c.name + ": {store: " + c.name + ".h5}");
        continue;
      }
      const std::string what = "channel '" + c.name + "': ";
      check_keys(s, d, kChannelKeys, "channel setting", what);
      if (const auto store = s["store"]) {
        fs::path p = scalar_string(store, d, what + "store");
        if (p.is_relative()) p = fs::path(config_.graph.run_dir) / p;
        c.store = p.lexically_normal().string();
      }
      if (const auto comp = s["compression"]) {
        if (integer<int>(comp, d, what + "compression", 0, &c.compression) && c.compression > 9) {
          error(what + "compression: expected 0 (off) to 9, got " + std::to_string(c.compression),
                loc(comp, d))
              .note("the gzip level of the HDF5 store; 4 is a good default");
        }
      }
      if (const auto chunk = s["chunk_items"]) {
        integer<std::int64_t>(chunk, d, what + "chunk_items", 1, &c.chunk_items);
      }
      config_.channels[c.name] = c;
    }
  }

  void read_bindings(const YAML::Node& map, const Doc& d, const std::string& what,
                     const std::string& node, std::vector<PortBinding>& out) {
    if (!map.IsMap()) {
      error("node '" + node + "': '" + what + "' must map port names to channel names", loc(map, d))
          .note("e.g. " + what + ": {audio: clean_audio}");
      return;
    }
    std::set<std::string> seen;
    for (const auto& kv : map) {
      const std::string port = kv.first.Scalar();
      if (!seen.insert(port).second) {
        error("node '" + node + "': port '" + port + "' is connected twice in '" + what + "'",
              loc(kv.first, d))
            .note("a port takes one channel; fan out by naming the channel in several nodes");
        continue;
      }
      if (!kv.second.IsScalar() || kv.second.Scalar().empty()) {
        error("node '" + node + "': port '" + port + "' must name a channel, got " +
                  (kv.second.IsScalar() ? std::string("an empty name") : yaml_kind(kv.second)),
              loc(kv.second, d));
        continue;
      }
      out.push_back({port, scalar_string(kv.second, d, "channel name"), loc(kv.first, d)});
    }
  }

  void read_nodes(const Doc& d) {
    const auto nodes = d.root["nodes"];
    if (!nodes || nodes.IsNull()) return;  // an empty section is no section
    if (!nodes.IsSequence()) {
      error("'nodes' must be a list of node mappings", loc(nodes, d))
          .note("e.g. nodes:\n  - {name: src, type: core.tensor_source, outputs: {out: x}}");
      return;
    }
    for (const auto& n : nodes) {
      if (!n.IsMap()) {
        error("a node must be a mapping with 'name' and 'type', got " + yaml_kind(n), loc(n, d));
        continue;
      }
      NodeConfig node;
      node.location = loc(n, d);
      const auto name = n["name"];
      if (name) node.name = scalar_string(name, d, "node name");
      // A misspelt 'name' or 'type' is reported as unknown key with a did-you-mean, not again
      // as missing.
      const std::set<std::string> meant =
          check_keys(n, d, kNodeKeys, "node key",
                     node.name.empty() ? std::string() : "node '" + node.name + "': ");
      if (!name && meant.count("name") == 0) {
        const auto type = n["type"];
        error("node without 'name'" +
                  (type && type.IsScalar() ? " (type " + type.Scalar() + ")" : std::string()),
              node.location)
            .note("every node needs a unique name");
      }
      if (const auto type = n["type"]) {
        node.type = scalar_string(type, d, "node type");
        node.type_location = loc(type, d);
      } else if (meant.count("type") == 0) {
        error("node '" + node.name + "' has no 'type'", node.location)
            .note("a type is a plugin node id such as core.tensor_source (see w2p-inspect)");
      }
      if (const auto opts = n["options"]) {
        if (opts.IsMap()) {
          std::set<std::string> seen;
          for (const auto& kv : opts) {
            const std::string key = kv.first.Scalar();
            if (!seen.insert(key).second) {
              error("node '" + node.name + "': option '" + key + "' is given twice",
                    loc(kv.first, d));
              continue;
            }
            node.options.push_back(
                {key, substituted(kv.second, d), loc(kv.first, d), loc(kv.second, d), d.dir});
          }
        } else if (!opts.IsNull()) {
          error("node '" + node.name + "': 'options' must be a mapping", loc(opts, d));
        }
      }
      if (const auto in = n["inputs"]) read_bindings(in, d, "inputs", node.name, node.inputs);
      if (const auto out = n["outputs"]) read_bindings(out, d, "outputs", node.name, node.outputs);
      if (const auto ep = n["epochs"]) {
        std::int64_t e = 1;
        if (integer<std::int64_t>(ep, d, "node '" + node.name + "': epochs", 1, &e)) {
          node.epochs = e;
        }
        node.epochs_location = loc(ep, d);
      }
      config_.nodes.push_back(std::move(node));
    }
  }

  void apply_sets() {
    const SourceLocation cli{kCommandLine, 0, 0};
    for (const auto& set : overrides_.sets) {
      const auto eq = set.find('=');
      const auto dot = set.find('.');
      if (eq == std::string::npos || dot == std::string::npos || dot > eq || dot == 0 ||
          dot + 1 == eq) {
        error("--set '" + set + "': expected NODE.OPTION=VALUE or graph.KEY=VALUE", cli);
        continue;
      }
      const std::string target = set.substr(0, dot);
      const std::string key = set.substr(dot + 1, eq - dot - 1);
      YAML::Node value;
      try {
        value = YAML::Load(set.substr(eq + 1));
      } catch (const YAML::Exception& e) {
        error("--set '" + set + "': value is not valid YAML: " + e.msg, cli);
        continue;
      }
      const Doc cli_doc{kCommandLine, fs::current_path().string(), {}};
      if (target == "graph") {
        if (std::find(kGraphKeys.begin(), kGraphKeys.end(), key) == kGraphKeys.end()) {
          Error& e = error("--set '" + set + "': unknown graph setting '" + key + "'", cli);
          const std::string hint = did_you_mean(key, kGraphKeys);
          if (!hint.empty()) e.note(hint);
          continue;
        }
        set_context_ = "--set '" + set + "': ";
        read_graph_key(key, value, cli_doc);
        set_context_.clear();
        continue;
      }
      NodeConfig* node = nullptr;
      std::vector<std::string> names;
      for (auto& n : config_.nodes) {
        names.push_back(n.name);
        if (n.name == target) node = &n;
      }
      if (node == nullptr) {
        Error& e = error("--set '" + set + "': no node named '" + target + "'", cli);
        const std::string hint = did_you_mean(target, names);
        if (!hint.empty()) e.note(hint);
        continue;
      }
      if (key == "epochs" && node->epochs) {
        std::int64_t ep = 1;
        set_context_ = "--set '" + set + "': ";
        if (integer<std::int64_t>(value, cli_doc, "epochs", 1, &ep)) node->epochs = ep;
        set_context_.clear();
        continue;
      }
      OptionEntry entry{key, value, cli, cli, cli_doc.dir};
      bool replaced = false;
      for (auto& o : node->options) {
        if (o.key == key) {
          o = entry;
          replaced = true;
        }
      }
      if (!replaced) node->options.push_back(entry);
    }
  }

  const ConfigOverrides& overrides_;
  PipelineConfig config_;
  std::vector<Error> errors_;
  bool unreadable_ = false;
  std::string set_context_;  ///< "--set 'x=1': " while a --set value is read  ///< a file could not
                             ///< be read, parsed or is not a mapping
};

}  // namespace

PipelineConfig load_pipeline(const std::string& path, const ConfigOverrides& overrides) {
  return Loader(overrides).load(path);
}

}  // namespace w2p
