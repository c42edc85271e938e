// Plugin `report`: a results folder a person wants to look at.
//   report.localization   evaluation summary + per-item predictions (+ training logs) ->
//                         <run_dir>/<out_dir>/summary.json, report.html, figures/*.svg
// Figures are rendered by gnuplot (SVG terminal) from data files in a temporary directory and
// inlined into the HTML, which references nothing outside itself.
#include <fcntl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <w2p/plugin.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace w2p::report {
namespace {

namespace fs = std::filesystem;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// ---- data ---------------------------------------------------------------------------------------

struct Row {
  std::string setup, method;
  std::int64_t count = 0, failures = 0;
  double mae_cm = kNaN, median_cm = kNaN, p90_cm = kNaN, accuracy = kNaN, threshold_m = kNaN,
         mic_mae_cm = kNaN;
};

using Vec3 = std::array<double, 3>;

struct Prediction {
  std::string setup;
  std::int64_t index = 0;
  Vec3 source{};
  std::vector<Vec3> mics;
  std::vector<std::int64_t> masked;
  Vec3 wav2pos{};
  double wav2pos_error_cm = kNaN;
  std::vector<Vec3> wav2pos_mics;
  double mic_error_cm = kNaN;
  Vec3 gcc{};
  double gcc_error_cm = kNaN;
  Vec3 ngcc{};
  double ngcc_error_cm = kNaN;
};

struct Csv {
  std::string path;
  std::vector<std::string> columns;
  std::vector<std::vector<double>> rows;  // NaN = empty cell
};

// The methods the evaluation knows, in display order, and their prediction fields.
struct MethodInfo {
  const char* name;
  const char* label;
  double Prediction::*error;
  Vec3 Prediction::*estimate;
};
const std::vector<MethodInfo>& methods() {
  static const std::vector<MethodInfo> m = {
      {"wav2pos", "wav2pos", &Prediction::wav2pos_error_cm, &Prediction::wav2pos},
      {"gcc_phat+multilateration", "GCC-PHAT", &Prediction::gcc_error_cm, &Prediction::gcc},
      {"ngcc_phat+multilateration", "NGCC-PHAT", &Prediction::ngcc_error_cm, &Prediction::ngcc},
  };
  return m;
}
const MethodInfo* find_method(const std::string& name) {
  for (const auto& m : methods()) {
    if (name == m.name) return &m;
  }
  return nullptr;
}

std::string str_field(const Item& item, const char* name) {
  return item.get(name).data<std::string>()[0];
}
double f64_field(const Item& item, const char* name) { return item.get(name).item<double>(); }
Vec3 vec3_field(const Item& item, const char* name) {
  const Tensor& t = item.get(name);
  const double* p = t.data<double>();
  return {p[0], p[1], p[2]};
}
std::vector<Vec3> mat3_field(const Item& item, const char* name) {
  const Tensor& t = item.get(name);
  const double* p = t.data<double>();
  std::vector<Vec3> out(static_cast<std::size_t>(t.numel() / 3));
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = {p[3 * i], p[3 * i + 1], p[3 * i + 2]};
  return out;
}

// ---- text helpers -------------------------------------------------------------------------------

std::string num(double v) {  // shortest round-trip form; "nan" for NaN
  if (!std::isfinite(v)) return std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf");
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

std::string fixed(double v, int digits) {
  if (!std::isfinite(v)) return "–";
  std::ostringstream s;
  s.setf(std::ios::fixed);
  s.precision(digits);
  s << v;
  return s.str();
}

std::string json_string(const std::string& text) {
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
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

// A JSON number that stays a float when read back (10 -> 10.0); NaN and infinities -> null.
std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  std::string s = num(v);
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

std::string html_escape(const std::string& text) {
  std::string out;
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// A gnuplot single-quoted string ('' is a quote inside it).
std::string gp_quote(const std::string& text) {
  std::string out = "'";
  for (const char c : text) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

// A file-name-safe version of a setup name.
std::string slug(const std::string& text) {
  std::string out;
  for (const char c : text) {
    out += (std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-') ? c : '_';
  }
  return out.empty() ? "_" : out;
}

std::string utc_timestamp() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

void write_atomically(const fs::path& path, const std::string& text) {
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) throw Error(ErrorKind::kIo, "cannot write '" + tmp.string() + "'");
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    throw Error(ErrorKind::kIo,
                "cannot rename '" + tmp.string() + "' to '" + path.string() + "': " + ec.message());
  }
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// A CSV with a header row and numeric cells (empty or unparsable = NaN).
bool read_csv(const std::string& path, Csv* out, std::string* error) {
  std::ifstream in(path);
  if (!in) {
    *error = "cannot open '" + path + "'";
    return false;
  }
  out->path = path;
  std::string line;
  auto split = [](const std::string& l) {
    std::vector<std::string> cells;
    std::string cell;
    std::istringstream s(l);
    while (std::getline(s, cell, ',')) {
      while (!cell.empty() && (cell.back() == '\r' || cell.back() == ' ')) cell.pop_back();
      while (!cell.empty() && cell.front() == ' ') cell.erase(cell.begin());
      cells.push_back(cell);
    }
    if (!l.empty() && l.back() == ',') cells.emplace_back();
    return cells;
  };
  if (!std::getline(in, line)) {
    *error = "'" + path + "' is empty";
    return false;
  }
  out->columns = split(line);
  if (out->columns.empty()) {
    *error = "'" + path + "' has no header row";
    return false;
  }
  while (std::getline(in, line)) {
    if (line.empty() || line == "\r") continue;
    const auto cells = split(line);
    std::vector<double> row(out->columns.size(), kNaN);
    for (std::size_t i = 0; i < row.size() && i < cells.size(); ++i) {
      if (cells[i].empty()) continue;
      char* end = nullptr;
      const double v = std::strtod(cells[i].c_str(), &end);
      if (end != cells[i].c_str() && *end == '\0') row[i] = v;
    }
    out->rows.push_back(std::move(row));
  }
  return true;
}

// ---- gnuplot ------------------------------------------------------------------------------------

// The executable's path: as given when it has a '/', else searched on PATH; empty if none.
std::string find_executable(const std::string& name) {
  if (name.empty()) return {};
  if (name.find('/') != std::string::npos) return ::access(name.c_str(), X_OK) == 0 ? name : "";
  const char* env = std::getenv("PATH");
  std::istringstream path(env != nullptr ? env : "/usr/local/bin:/usr/bin:/bin");
  std::string dir;
  while (std::getline(path, dir, ':')) {
    const std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return {};
}

Error gnuplot_missing(const std::string& option) {
  return Error(ErrorKind::kConfig, "gnuplot not found: option 'gnuplot' is '" + option + "'")
      .note(
          "report.localization renders its figures with gnuplot: run tools/install-deps "
          "(Debian package gnuplot-nox), or set option 'gnuplot' to its path");
}

// Runs `gnuplot script` (stdout and stderr into `log`); throws unless it exits 0.
void run_gnuplot(const std::string& exe, const fs::path& script, const fs::path& log) {
  const pid_t pid = ::fork();
  if (pid < 0) throw Error(ErrorKind::kIo, "cannot start gnuplot: fork failed");
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::close(fd);
    }
    const std::string s = script.string();
    ::execl(exe.c_str(), exe.c_str(), s.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw Error(ErrorKind::kIo, "waiting for gnuplot failed");
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string output = read_file(log);
    if (output.size() > 2000) output = "..." + output.substr(output.size() - 2000);
    const std::string how = WIFEXITED(status)
                                ? "exited with status " + std::to_string(WEXITSTATUS(status))
                                : "was killed by signal " + std::to_string(WTERMSIG(status));
    Error e(ErrorKind::kIo, "gnuplot " + how + " on '" + script.string() + "'");
    if (!output.empty()) e.note("gnuplot said: " + output);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
      e.note("run tools/install-deps (Debian package gnuplot-nox)");
    throw e;
  }
}

// The SVG as it goes inside the HTML: no XML prolog or DOCTYPE, ids prefixed to stay unique.
std::string inline_svg(const std::string& svg, const std::string& prefix) {
  std::size_t start = svg.find("<svg");
  std::string body = start == std::string::npos ? svg : svg.substr(start);
  auto replace_all = [&body](const std::string& from, const std::string& to) {
    std::size_t pos = 0;
    while ((pos = body.find(from, pos)) != std::string::npos) {
      body.replace(pos, from.size(), to);
      pos += to.size();
    }
  };
  replace_all("id='", "id='" + prefix);
  replace_all("id=\"", "id=\"" + prefix);
  replace_all("href='#", "href='#" + prefix);
  replace_all("href=\"#", "href=\"#" + prefix);
  replace_all("url(#", "url(#" + prefix);
  return body;
}

const char* kTerminalTail = " fixed noenhanced font 'Helvetica,12' background rgb 'white'\n";
const char* kColors[] = {"#1b6ac9", "#d1495b", "#2e9d5b", "#8e5ea2", "#edae49", "#555555"};

// ---- the node -----------------------------------------------------------------------------------

struct Figure {
  std::string key;       // "cdf_1a"
  std::string relative;  // "figures/cdf_1a.svg"
  std::string caption;
  std::string svg;  // inline form
};

class LocalizationReport final : public Node {
 public:
  static constexpr const char* kDoc =
      "Results folder of a localisation evaluation: collects the stream `summary` (one row per "
      "(setup, method)) and, at the end, writes <run_dir>/<out_dir>/summary.json (setups -> "
      "methods -> metrics, counts, the training log's last row, timestamp, figure paths; NaN "
      "as null) and a self-contained report.html: an introduction to the setups, a metrics "
      "table per setup (best value per column highlighted), per-setup error CDFs from the "
      "side input `predictions`, a top-view room plot of `room_examples` predictions and "
      "learning curves from the side input `training` (field log: a CSV path) and "
      "`extra_logs`. Figures are rendered by gnuplot to SVG (kept under figures/ and inlined). "
      "Errors: gnuplot missing or failing, unwritable output folder.";
  static constexpr Port kSummary{"summary"};
  static constexpr Port kPredictions{"predictions"};
  static constexpr Port kTraining{"training"};

  static std::vector<OptionSpec> options() {
    return {
        OptionSpec::string("out_dir", "results")
            .describe("output folder, relative to the run directory (or absolute)"),
        OptionSpec::string("title", "wav2pos evaluation").describe("report title"),
        OptionSpec::float_list("room_dim", std::vector<double>{5, 5, 2})
            .size(3)
            .range(0.01, 1e4)
            .describe("room size x, y, z in metres (top-view plot)"),
        OptionSpec::integer("room_examples", 6)
            .range(0, 1000)
            .describe("predictions drawn in the top view (setup 1a, else the first setup)"),
        OptionSpec::number("threshold_m", 0.3)
            .range(0, 1e3)
            .describe("accuracy threshold marked in the error CDFs (metres)"),
        OptionSpec::string_list("extra_logs", std::vector<std::string>{})
            .describe("more training CSVs (header row, first column epoch), relative to the "
                      "YAML's folder or absolute; a missing one is a warning in the report"),
        OptionSpec::string("gnuplot", "gnuplot").describe("gnuplot executable (name or path)"),
    };
  }

  static Contract declare(const Options& /*o*/) {
    const auto str = spec(DType::kStr);
    const auto i64 = spec(DType::kI64);
    const auto f64 = spec(DType::kF64);
    const Schema summary{{{"setup", str, "setup name, e.g. 1a"},
                          {"method", str, "e.g. wav2pos, gcc_phat+multilateration"},
                          {"count", i64, "items evaluated"},
                          {"failures", i64, "items without an estimate"},
                          {"mae_cm", f64, "mean absolute error, cm"},
                          {"median_cm", f64, "median error, cm"},
                          {"p90_cm", f64, "90th percentile error, cm"},
                          {"accuracy", f64, "share with error < threshold_m"},
                          {"threshold_m", f64, "accuracy threshold, m"},
                          {"mic_mae_cm", f64, "microphone position MAE, cm (NaN: n/a)"}}};
    const auto v3 = spec(DType::kF64, {3});
    const auto m3 = spec(DType::kF64, {"?", 3});
    const Schema predictions{
        {{"setup", str, "setup name"},
         {"index", i64, "test item index"},
         {"source_pos", v3, "true source, m"},
         {"mic_pos", m3, "true microphones, m"},
         {"mic_masked", spec(DType::kI64, {"?"}), "1 = location unknown to the model"},
         {"wav2pos_source", v3, "wav2pos source estimate"},
         {"wav2pos_error_cm", f64, "wav2pos source error, cm"},
         {"wav2pos_mics", m3, "wav2pos microphone positions"},
         {"mic_error_cm", f64, "masked microphone error, cm (NaN: none masked)"},
         {"gcc_source", v3, "GCC-PHAT + multilateration estimate (NaN: failed)"},
         {"gcc_error_cm", f64, "its error, cm"},
         {"ngcc_source", v3, "NGCC-PHAT + multilateration estimate"},
         {"ngcc_error_cm", f64, "its error, cm"}}};
    const Schema training{{{"log", str, "training CSV path (header row, first column epoch)"}}};
    return Contract()
        .input(kSummary, summary, "evaluation summary rows, at the end of the evaluation")
        .side_input(kPredictions, predictions, "per-item predictions of every setup")
        .side_input(kTraining, training, "the trainer's log")
        .optional()
        .cardinality(Cardinality::kAny);
  }

  explicit LocalizationReport(const Options& o)
      : out_dir_(o.get_string("out_dir")),
        title_(o.get_string("title")),
        room_dim_(o.get_float_list("room_dim")),
        room_examples_(o.get_int("room_examples")),
        threshold_m_(o.get_float("threshold_m")),
        extra_logs_(o.get_string_list("extra_logs")),
        gnuplot_option_(o.get_string("gnuplot")) {}

  void open(NodeContext& ctx) override {
    gnuplot_ = find_executable(gnuplot_option_);
    if (gnuplot_.empty()) throw gnuplot_missing(gnuplot_option_);
    for (const Item& item : ctx.side(kPredictions)) {
      Prediction p;
      p.setup = str_field(item, "setup");
      p.index = item.get("index").item<std::int64_t>();
      p.source = vec3_field(item, "source_pos");
      p.mics = mat3_field(item, "mic_pos");
      p.masked = item.get("mic_masked").to_vector<std::int64_t>();
      p.wav2pos = vec3_field(item, "wav2pos_source");
      p.wav2pos_error_cm = f64_field(item, "wav2pos_error_cm");
      p.wav2pos_mics = mat3_field(item, "wav2pos_mics");
      p.mic_error_cm = f64_field(item, "mic_error_cm");
      p.gcc = vec3_field(item, "gcc_source");
      p.gcc_error_cm = f64_field(item, "gcc_error_cm");
      p.ngcc = vec3_field(item, "ngcc_source");
      p.ngcc_error_cm = f64_field(item, "ngcc_error_cm");
      predictions_.push_back(std::move(p));
    }
    if (ctx.connected(kTraining) && !ctx.side(kTraining).empty()) {
      training_log_ = str_field(ctx.side(kTraining).back(), "log");
    }
    base_dir_ = fs::path(ctx.run().pipeline).parent_path();
    run_dir_ = ctx.run().run_dir;
  }

  Flow process(NodeContext& ctx) override {
    const Item& item = ctx.in(kSummary);
    Row r;
    r.setup = str_field(item, "setup");
    r.method = str_field(item, "method");
    r.count = item.get("count").item<std::int64_t>();
    r.failures = item.get("failures").item<std::int64_t>();
    r.mae_cm = f64_field(item, "mae_cm");
    r.median_cm = f64_field(item, "median_cm");
    r.p90_cm = f64_field(item, "p90_cm");
    r.accuracy = f64_field(item, "accuracy");
    r.threshold_m = f64_field(item, "threshold_m");
    r.mic_mae_cm = f64_field(item, "mic_mae_cm");
    rows_.push_back(std::move(r));
    return Flow::kContinue;
  }

  void finish(NodeContext& ctx) override {
    const fs::path out = fs::path(run_dir_) / out_dir_;
    std::error_code ec;
    fs::create_directories(out / "figures", ec);
    if (ec) {
      throw Error(ErrorKind::kIo,
                  "cannot create '" + (out / "figures").string() + "': " + ec.message());
    }
    make_tmp_dir();
    load_logs();
    setups_ = setup_order();

    for (const auto& s : setups_) render_cdf(out, s);
    render_room(out);
    for (std::size_t i = 0; i < logs_.size(); ++i) render_learning(out, i);

    write_atomically(out / "summary.json", summary_json());
    write_atomically(out / "report.html", report_html());
    remove_tmp_dir();
    ctx.info("report: " + (out / "report.html").string() + " (" + std::to_string(figures_.size()) +
             " figures, " + std::to_string(rows_.size()) + " summary rows, " +
             std::to_string(predictions_.size()) + " predictions)");
    for (const auto& w : warnings_) ctx.warn("report: " + w);
  }

  void close(NodeContext& /*ctx*/) override { remove_tmp_dir(); }

 private:
  // Setups in order of first appearance (summary rows, then predictions).
  std::vector<std::string> setup_order() const {
    std::vector<std::string> out;
    auto add = [&out](const std::string& s) {
      if (std::find(out.begin(), out.end(), s) == out.end()) out.push_back(s);
    };
    for (const auto& r : rows_) add(r.setup);
    for (const auto& p : predictions_) add(p.setup);
    return out;
  }

  // Methods of a setup: those with summary rows, else those with finite prediction errors.
  std::vector<std::string> methods_of(const std::string& setup) const {
    std::vector<std::string> out;
    for (const auto& r : rows_) {
      if (r.setup == setup && std::find(out.begin(), out.end(), r.method) == out.end())
        out.push_back(r.method);
    }
    if (!out.empty()) return out;
    for (const auto& m : methods()) {
      for (const auto& p : predictions_) {
        if (p.setup == setup && std::isfinite(p.*m.error)) {
          out.push_back(m.name);
          break;
        }
      }
    }
    return out;
  }

  void make_tmp_dir() {
    std::string tmpl = (fs::temp_directory_path() / "w2p-report-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr)
      throw Error(ErrorKind::kIo, "cannot create a temporary directory under " +
                                      fs::temp_directory_path().string());
    tmp_ = tmpl;
  }
  void remove_tmp_dir() {
    if (tmp_.empty()) return;
    std::error_code ec;
    fs::remove_all(tmp_, ec);
    tmp_.clear();
  }

  void load_logs() {
    std::vector<std::pair<std::string, bool>> paths;  // (path, is the training side input)
    if (!training_log_.empty()) paths.emplace_back(training_log_, true);
    for (const auto& p : extra_logs_) {
      fs::path path(p);
      if (path.is_relative()) path = base_dir_ / path;
      paths.emplace_back(path.lexically_normal().string(), false);
    }
    for (const auto& [path, main] : paths) {
      Csv csv;
      std::string error;
      if (!read_csv(path, &csv, &error)) {
        warnings_.push_back((main ? "training log: " : "extra log: ") + error);
        missing_logs_.push_back(path);
        continue;
      }
      if (main) training_index_ = static_cast<int>(logs_.size());
      logs_.push_back(std::move(csv));
    }
  }

  // Writes the script, runs gnuplot, keeps the SVG under figures/ and inline.
  void render(const fs::path& out, const std::string& key, const std::string& caption,
              const std::string& script, int width = 720, int height = 460) {
    const fs::path svg_tmp = tmp_ / (key + ".svg");
    const fs::path script_path = tmp_ / (key + ".gp");
    write_atomically(script_path, "set terminal svg size " + std::to_string(width) + "," +
                                      std::to_string(height) + kTerminalTail +
                                      "set termoption noenhanced\nset output " +
                                      gp_quote(svg_tmp.string()) + "\n" + script +
                                      "\nunset output\n");
    run_gnuplot(gnuplot_, script_path, tmp_ / (key + ".log"));
    const std::string svg = read_file(svg_tmp);
    if (svg.find("<svg") == std::string::npos)
      throw Error(ErrorKind::kIo, "gnuplot wrote no SVG for figure '" + key + "'");
    const std::string relative = "figures/" + key + ".svg";
    write_atomically(out / relative, svg);
    figures_.push_back(
        {key, relative, caption, inline_svg(svg, "f" + std::to_string(figures_.size()) + "_")});
  }

  const Figure* figure(const std::string& key) const {
    for (const auto& f : figures_) {
      if (f.key == key) return &f;
    }
    return nullptr;
  }

  void render_cdf(const fs::path& out, const std::string& setup) {
    const fs::path data = tmp_ / ("cdf_" + slug(setup) + ".dat");
    std::ofstream file(data);
    std::ostringstream plot;
    int block = 0;
    double lo = std::numeric_limits<double>::infinity(), hi = 0;
    for (const auto& name : methods_of(setup)) {
      const MethodInfo* m = find_method(name);
      if (m == nullptr) continue;
      std::vector<double> errors;
      std::size_t total = 0;
      for (const auto& p : predictions_) {
        if (p.setup != setup) continue;
        ++total;
        if (std::isfinite(p.*m->error)) errors.push_back(std::max(p.*m->error, 1e-3));
      }
      if (errors.empty()) continue;
      std::sort(errors.begin(), errors.end());
      lo = std::min(lo, errors.front());
      hi = std::max(hi, errors.back());
      // A step per item; failures keep the curve below 1 (share of all items).
      file << num(errors.front()) << " 0\n";
      for (std::size_t i = 0; i < errors.size(); ++i)
        file << num(errors[i]) << " " << num(static_cast<double>(i + 1) / total) << "\n";
      file << "\n\n";
      plot << (block == 0 ? "plot " : ", \\\n     ") << gp_quote(data.string()) << " index "
           << block << " using 1:2 with steps lw 2 lc rgb '" << kColors[block % 6] << "' title "
           << gp_quote(name);
      ++block;
    }
    file.close();
    if (block == 0) {
      warnings_.push_back("setup " + setup + ": no prediction errors for an error CDF");
      return;
    }
    const double threshold_cm = 100.0 * threshold_m_;
    hi = std::max(hi, threshold_cm);
    lo = std::min(lo, threshold_cm);
    const bool log_x = hi / lo > 100.0;
    std::ostringstream s;
    s << "set title " << gp_quote("Error CDF, setup " + setup) << "\n"
      << "set xlabel 'source error (cm)'\nset ylabel 'share of items'\n"
      << "set yrange [0:1.02]\nset grid\nset key outside below center horizontal box\nset bmargin "
         "7\n";
    if (log_x) {
      s << "set logscale x\nset xrange [" << num(lo / 1.5) << ":" << num(hi * 1.5) << "]\n";
    } else {
      s << "set xrange [0:" << num(hi * 1.05) << "]\n";
    }
    s << "set arrow from " << num(threshold_cm) << ", graph 0 to " << num(threshold_cm)
      << ", graph 1 nohead dt 2 lw 1.5 lc rgb '#444444'\n"
      << "set label " << gp_quote("threshold " + fixed(threshold_cm, 0) + " cm") << " at "
      << num(threshold_cm) << ", graph 0.97 offset 0.5,0 left tc rgb '#444444'\n"
      << plot.str() << "\n";
    render(out, "cdf_" + slug(setup), "Cumulative distribution of the source error, setup " + setup,
           s.str());
  }

  void render_room(const fs::path& out) {
    if (room_examples_ <= 0 || predictions_.empty()) return;
    std::string setup = predictions_.front().setup;
    for (const auto& p : predictions_) {
      if (p.setup == "1a") setup = "1a";
    }
    std::vector<const Prediction*> chosen;
    for (const auto& p : predictions_) {
      if (p.setup == setup) chosen.push_back(&p);
    }
    std::stable_sort(chosen.begin(), chosen.end(),
                     [](const Prediction* a, const Prediction* b) { return a->index < b->index; });
    if (static_cast<std::int64_t>(chosen.size()) > room_examples_)
      chosen.resize(static_cast<std::size_t>(room_examples_));
    room_setup_ = setup;
    room_count_ = chosen.size();

    const fs::path data = tmp_ / "room.dat";
    std::ofstream file(data);
    auto finite = [](const Vec3& v) { return std::isfinite(v[0]) && std::isfinite(v[1]); };
    // block 0: microphones (unique), 1: true sources with labels, 2..4: estimates per method as
    // vectors (x y dx dy), 5: wav2pos microphone estimates of masked microphones.
    std::set<std::pair<double, double>> seen;
    for (const auto* p : chosen) {
      for (const auto& m : p->mics) {
        if (seen.insert({m[0], m[1]}).second) file << num(m[0]) << " " << num(m[1]) << "\n";
      }
    }
    if (seen.empty()) file << "nan nan\n";
    file << "\n\n";
    for (const auto* p : chosen)
      file << num(p->source[0]) << " " << num(p->source[1]) << " " << p->index << "\n";
    file << "\n\n";
    for (const auto& m : methods()) {
      bool any = false;
      for (const auto* p : chosen) {
        const Vec3& e = p->*m.estimate;
        if (!finite(e)) continue;
        file << num(p->source[0]) << " " << num(p->source[1]) << " " << num(e[0] - p->source[0])
             << " " << num(e[1] - p->source[1]) << "\n";
        any = true;
      }
      if (!any) file << "nan nan nan nan\n";
      file << "\n\n";
    }
    bool masked_any = false;
    for (const auto* p : chosen) {
      for (std::size_t i = 0; i < p->masked.size() && i < p->wav2pos_mics.size(); ++i) {
        if (p->masked[i] == 0 || !finite(p->wav2pos_mics[i])) continue;
        file << num(p->wav2pos_mics[i][0]) << " " << num(p->wav2pos_mics[i][1]) << "\n";
        masked_any = true;
      }
    }
    if (!masked_any) file << "nan nan\n";
    file.close();

    const double w = room_dim_[0], d = room_dim_[1];
    const double pad = 0.05 * std::max(w, d);
    const std::string q = gp_quote(data.string());
    std::ostringstream s;
    s << "set title "
      << gp_quote("Top view, setup " + setup + ": " + std::to_string(chosen.size()) + " test items")
      << "\nset xlabel 'x (m)'\nset ylabel 'y (m)'\nset size ratio -1\n"
      << "set xrange [" << num(-pad) << ":" << num(w + pad) << "]\nset yrange [" << num(-pad) << ":"
      << num(d + pad) << "]\n"
      << "set object 1 rect from 0,0 to " << num(w) << "," << num(d)
      << " fs empty border lc rgb '#333333' lw 2\n"
      << "set grid\nset key outside right top box\n"
      << "plot " << q << " index 0 using 1:2 with points pt 5 ps 1.0 lc rgb '#333333' title "
      << "'microphones', \\\n     " << q
      << " index 1 using 1:2 with points pt 7 ps 1.3 lc rgb '#000000' title 'true source', \\\n"
      << "     " << q << " index 1 using 1:2:(sprintf('%d', $3)) with labels offset 0.9,0.9 "
      << "notitle";
    const char* points[] = {"6", "8", "4"};
    for (std::size_t i = 0; i < methods().size(); ++i) {
      s << ", \\\n     " << q << " index " << i + 2
        << " using 1:2:3:4 with vectors nohead dt 2 lc rgb '" << kColors[i] << "' notitle"
        << ", \\\n     " << q << " index " << i + 2 << " using ($1+$3):($2+$4) with points pt "
        << points[i] << " ps 1.2 lw 2 lc rgb '" << kColors[i] << "' title "
        << gp_quote(std::string(methods()[i].label) + " estimate");
    }
    if (masked_any) {
      s << ", \\\n     " << q << " index 5 using 1:2 with points pt 3 ps 1.3 lw 2 lc rgb '"
        << kColors[3] << "' title 'wav2pos mic estimate'";
    }
    s << "\n";
    render(out, "room_" + slug(setup),
           "Top view of the room (x-y) with microphones, true sources and the estimates; dashed "
           "lines join each source to its estimates",
           s.str(), 760, 600);
  }

  void render_learning(const fs::path& out, std::size_t which) {
    const Csv& csv = logs_[which];
    if (csv.columns.size() < 2 || csv.rows.empty()) {
      warnings_.push_back("log '" + csv.path + "' has no data rows to plot");
      return;
    }
    const std::string name = fs::path(csv.path).stem().string();
    const std::string key = "learning_" + std::to_string(which) + "_" + slug(name);
    const fs::path data = tmp_ / (key + ".dat");
    std::ofstream file(data);
    std::vector<std::size_t> loss, val, written;
    int block = 0;
    std::map<std::size_t, int> block_of;
    for (std::size_t c = 1; c < csv.columns.size(); ++c) {
      const std::string& col = csv.columns[c];
      const bool is_loss = col.find("loss") != std::string::npos;
      const bool is_val = col.rfind("val_", 0) == 0 && !is_loss;
      if (!is_loss && !is_val) continue;
      bool any = false;
      for (const auto& row : csv.rows) {
        if (!std::isfinite(row[0]) || !std::isfinite(row[c])) continue;
        file << num(row[0]) << " " << num(row[c]) << "\n";
        any = true;
      }
      if (!any) continue;
      file << "\n\n";
      block_of[c] = block++;
      (is_loss ? loss : val).push_back(c);
    }
    file.close();
    auto plot = [&](const std::vector<std::size_t>& cols, const std::string& suffix,
                    const std::string& title, bool y2_for_fractions) {
      if (cols.empty()) return;
      bool positive = true;
      bool has_y2 = false;
      for (const auto c : cols) {
        for (const auto& row : csv.rows) {
          if (std::isfinite(row[c]) && row[c] <= 0) positive = false;
        }
        if (y2_for_fractions && csv.columns[c].find("acc") != std::string::npos) has_y2 = true;
      }
      std::ostringstream s;
      s << "set title " << gp_quote(title) << "\nset xlabel 'epoch'\nset grid\n"
        << "set key outside below center horizontal box\nset bmargin 7\n";
      if (csv.rows.size() <= 15) s << "set xtics 1\n";
      if (!y2_for_fractions && positive) s << "set logscale y\n";
      if (has_y2)
        s << "set y2label 'accuracy (share)'\nset y2range [0:1.02]\nset ytics nomirror\n"
          << "set y2tics\n";
      s << "set ylabel " << gp_quote(y2_for_fractions ? "validation metric" : "loss") << "\n";
      int i = 0;
      for (const auto c : cols) {
        const bool y2 = y2_for_fractions && csv.columns[c].find("acc") != std::string::npos;
        s << (i == 0 ? "plot " : ", \\\n     ") << gp_quote(data.string()) << " index "
          << block_of[c] << " using 1:2" << (y2 ? " axes x1y2" : "")
          << " with linespoints pt 7 ps 0.5 lw 2 lc rgb '" << kColors[i % 6] << "' title "
          << gp_quote(csv.columns[c] + (y2 ? " (right axis)" : ""));
        ++i;
      }
      s << "\n";
      render(out, key + suffix, title + " (" + csv.path + ")", s.str());
      learning_.push_back(key + suffix);
    };
    plot(loss, "_loss", "Training losses: " + name, false);
    plot(val, "_val", "Validation metrics: " + name, true);
    if (loss.empty() && val.empty())
      warnings_.push_back("log '" + csv.path + "' has no loss or val_ columns to plot");
  }

  // ---- summary.json -----------------------------------------------------------------------------

  std::string summary_json() const {
    std::ostringstream j;
    j << "{\n  \"title\": " << json_string(title_)
      << ",\n  \"generated\": " << json_string(utc_timestamp())
      << ",\n  \"run_dir\": " << json_string(run_dir_)
      << ",\n  \"threshold_m\": " << json_number(threshold_m_) << ",\n  \"setups\": {";
    for (std::size_t s = 0; s < setups_.size(); ++s) {
      j << (s ? ",\n" : "\n") << "    " << json_string(setups_[s]) << ": {";
      bool first = true;
      for (const auto& r : rows_) {
        if (r.setup != setups_[s]) continue;
        j << (first ? "\n" : ",\n") << "      " << json_string(r.method) << ": {"
          << "\"count\": " << r.count << ", \"failures\": " << r.failures
          << ", \"mae_cm\": " << json_number(r.mae_cm)
          << ", \"median_cm\": " << json_number(r.median_cm)
          << ", \"p90_cm\": " << json_number(r.p90_cm)
          << ", \"accuracy\": " << json_number(r.accuracy)
          << ", \"threshold_m\": " << json_number(r.threshold_m)
          << ", \"mic_mae_cm\": " << json_number(r.mic_mae_cm) << "}";
        first = false;
      }
      j << (first ? "}" : "\n    }");
    }
    j << (setups_.empty() ? "}" : "\n  }") << ",\n  \"counts\": {\"summary_rows\": " << rows_.size()
      << ", \"predictions\": " << predictions_.size() << ", \"predictions_per_setup\": {";
    for (std::size_t s = 0; s < setups_.size(); ++s) {
      const auto n = std::count_if(predictions_.begin(), predictions_.end(),
                                   [&](const Prediction& p) { return p.setup == setups_[s]; });
      j << (s ? ", " : "") << json_string(setups_[s]) << ": " << n;
    }
    j << "}},\n  \"training\": ";
    if (training_index_ >= 0) {
      j << log_json(logs_[static_cast<std::size_t>(training_index_)]);
    } else {
      j << "null";
    }
    j << ",\n  \"extra_logs\": [";
    bool first = true;
    for (std::size_t i = 0; i < logs_.size(); ++i) {
      if (static_cast<int>(i) == training_index_) continue;
      j << (first ? "" : ", ") << log_json(logs_[i]);
      first = false;
    }
    j << "],\n  \"missing_logs\": [";
    for (std::size_t i = 0; i < missing_logs_.size(); ++i)
      j << (i ? ", " : "") << json_string(missing_logs_[i]);
    j << "],\n  \"figures\": {\"cdf\": {";
    first = true;
    for (const auto& s : setups_) {
      if (const Figure* f = figure("cdf_" + slug(s))) {
        j << (first ? "" : ", ") << json_string(s) << ": " << json_string(f->relative);
        first = false;
      }
    }
    j << "}, \"room\": ";
    const Figure* room = figure("room_" + slug(room_setup_));
    j << (room != nullptr ? json_string(room->relative) : "null") << ", \"learning\": [";
    for (std::size_t i = 0; i < learning_.size(); ++i)
      j << (i ? ", " : "") << json_string(figure(learning_[i])->relative);
    j << "]},\n  \"warnings\": [";
    for (std::size_t i = 0; i < warnings_.size(); ++i)
      j << (i ? ", " : "") << json_string(warnings_[i]);
    j << "]\n}\n";
    return j.str();
  }

  static std::string log_json(const Csv& csv) {
    std::ostringstream j;
    j << "{\"log\": " << json_string(csv.path) << ", \"epochs\": " << csv.rows.size()
      << ", \"last\": ";
    if (csv.rows.empty()) {
      j << "null}";
      return j.str();
    }
    j << "{";
    for (std::size_t c = 0; c < csv.columns.size(); ++c)
      j << (c ? ", " : "") << json_string(csv.columns[c]) << ": "
        << json_number(csv.rows.back()[c]);
    j << "}}";
    return j.str();
  }

  // ---- report.html ------------------------------------------------------------------------------

  std::string figure_html(const Figure* f) const {
    if (f == nullptr) return {};
    return "<figure>\n" + f->svg + "\n<figcaption>" + html_escape(f->caption) + " — <a href=\"" +
           html_escape(f->relative) + "\">" + html_escape(f->relative) +
           "</a></figcaption>\n</figure>\n";
  }

  std::string table_html(const std::string& setup) const {
    std::vector<const Row*> rows;
    for (const auto& r : rows_) {
      if (r.setup == setup) rows.push_back(&r);
    }
    if (rows.empty()) return "<p class=\"note\">No summary rows for this setup.</p>\n";
    struct Col {
      const char* head;
      double (*get)(const Row&);
      bool lower_better;
      int digits;
    };
    const std::vector<Col> cols = {
        {"failures", [](const Row& r) { return static_cast<double>(r.failures); }, true, 0},
        {"MAE (cm)", [](const Row& r) { return r.mae_cm; }, true, 2},
        {"median (cm)", [](const Row& r) { return r.median_cm; }, true, 2},
        {"p90 (cm)", [](const Row& r) { return r.p90_cm; }, true, 2},
        {"accuracy", [](const Row& r) { return r.accuracy; }, false, 3},
        {"mic MAE (cm)", [](const Row& r) { return r.mic_mae_cm; }, true, 2},
    };
    std::ostringstream h;
    const double thr = rows.front()->threshold_m;
    h << "<table>\n<thead><tr><th>method</th><th>items</th>";
    for (const auto& c : cols) {
      std::string head = c.head;
      if (head == "accuracy" && std::isfinite(thr))
        head += " (&lt; " + fixed(100.0 * thr, 0) + " cm)";
      h << "<th>" << head << "</th>";
    }
    h << "</tr></thead>\n<tbody>\n";
    std::vector<double> best(cols.size(), kNaN);
    std::vector<int> finite_count(cols.size(), 0);
    for (std::size_t c = 0; c < cols.size(); ++c) {
      for (const auto* r : rows) {
        const double v = cols[c].get(*r);
        if (!std::isfinite(v)) continue;
        ++finite_count[c];
        if (!std::isfinite(best[c]) || (cols[c].lower_better ? v < best[c] : v > best[c]))
          best[c] = v;
      }
    }
    for (const auto* r : rows) {
      h << "<tr><td class=\"method\">" << html_escape(r->method) << "</td><td>" << r->count
        << "</td>";
      for (std::size_t c = 0; c < cols.size(); ++c) {
        const double v = cols[c].get(*r);
        const bool is_best = finite_count[c] >= 2 && std::isfinite(v) && v == best[c];
        h << "<td" << (is_best ? " class=\"best\"" : "") << ">" << fixed(v, cols[c].digits)
          << "</td>";
      }
      h << "</tr>\n";
    }
    h << "</tbody>\n</table>\n";
    return h.str();
  }

  std::string report_html() const {
    std::ostringstream h;
    h << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      << "<title>" << html_escape(title_) << "</title>\n<style>\n"
      << "body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;color:#222;"
         "background:#f6f7f9;margin:0;line-height:1.5}\n"
         "main{max-width:980px;margin:0 auto;padding:24px 28px 48px;background:#fff;"
         "box-shadow:0 0 12px rgba(0,0,0,.06)}\n"
         "h1{margin:.2em 0 .1em;font-size:1.9em}h2{margin-top:1.8em;border-bottom:2px solid "
         "#e3e6ea;padding-bottom:.2em}h3{margin-top:1.4em}\n"
         ".meta{color:#666;font-size:.9em}.note{color:#666}\n"
         "table{border-collapse:collapse;margin:.8em 0;font-size:.95em}\n"
         "th,td{padding:.35em .8em;border-bottom:1px solid #e3e6ea;text-align:right}\n"
         "th{background:#f0f2f5;font-weight:600}td.method,th:first-child{text-align:left;"
         "font-family:ui-monospace,Menlo,Consolas,monospace}\n"
         "td.best{background:#e2f4e6;font-weight:700;color:#17692f}\n"
         "figure{margin:1em 0}figure svg{max-width:100%;height:auto;border:1px solid #e3e6ea}\n"
         "figcaption{color:#555;font-size:.9em}\n"
         "dl.setups dt{font-weight:700;float:left;width:2.5em}dl.setups dd{margin-left:3em}\n"
         ".warn{background:#fff4e0;border-left:4px solid #edae49;padding:.5em 1em}\n"
         "code{font-family:ui-monospace,Menlo,Consolas,monospace;background:#f0f2f5;"
         "padding:0 .25em}\n"
      << "</style>\n</head>\n<body>\n<main>\n";
    h << "<h1>" << html_escape(title_) << "</h1>\n<p class=\"meta\">Generated "
      << html_escape(utc_timestamp()) << " · run directory <code>" << html_escape(run_dir_)
      << "</code> · " << rows_.size() << " summary rows · " << predictions_.size()
      << " predictions · machine-readable: <a href=\"summary.json\">summary.json</a></p>\n";

    h << "<h2>What was evaluated</h2>\n<p>Each test item is a sound source in a simulated room "
         "recorded by several microphones. Every method estimates the source position; the "
         "error is the Euclidean distance to the true position. <b>wav2pos</b> is the learned "
         "model; <b>GCC-PHAT</b> and <b>NGCC-PHAT</b> + multilateration are the classical and "
         "learned time-delay baselines. Accuracy is the share of items with an error below the "
         "threshold; failures are items for which a method gave no estimate.</p>\n"
      << "<dl class=\"setups\">\n"
      << "<dt>1a</dt><dd>Microphone positions and microphone audio known, source audio "
         "unknown: localisation from time differences of arrival (TDOA).</dd>\n"
      << "<dt>1b</dt><dd>As 1a, and the source audio is known too: localisation from times of "
         "arrival (TOA).</dd>\n"
      << "<dt>2a</dt><dd>As 1b, but one microphone's location is unknown as well: the model "
         "also estimates it (mic MAE).</dd>\n</dl>\n";

    if (!warnings_.empty()) {
      h << "<div class=\"warn\"><b>Warnings</b><ul>\n";
      for (const auto& w : warnings_) h << "<li>" << html_escape(w) << "</li>\n";
      h << "</ul></div>\n";
    }

    h << "<h2>Results per setup</h2>\n";
    for (const auto& s : setups_) {
      h << "<h3>Setup " << html_escape(s) << "</h3>\n"
        << table_html(s) << figure_html(figure("cdf_" + slug(s)));
    }
    if (const Figure* room = figure("room_" + slug(room_setup_))) {
      h << "<h2>Examples in the room</h2>\n<p>The first " << room_count_ << " test items of setup "
        << html_escape(room_setup_) << ", seen from above.</p>\n"
        << figure_html(room);
    }
    h << "<h2>Training</h2>\n";
    if (logs_.empty()) {
      h << "<p class=\"note\">No training log was given.</p>\n";
    } else {
      for (const auto& l : logs_) {
        h << "<p>Log <code>" << html_escape(l.path) << "</code>: " << l.rows.size() << " epochs";
        if (!l.rows.empty()) {
          h << "; last row: ";
          for (std::size_t c = 0; c < l.columns.size(); ++c) {
            h << (c ? ", " : "") << html_escape(l.columns[c]) << " = "
              << html_escape(std::isfinite(l.rows.back()[c]) ? num(l.rows.back()[c]) : "–");
          }
        }
        h << ".</p>\n";
      }
      for (const auto& key : learning_) h << figure_html(figure(key));
    }
    h << "</main>\n</body>\n</html>\n";
    return h.str();
  }

  std::string out_dir_, title_;
  std::vector<double> room_dim_;
  std::int64_t room_examples_;
  double threshold_m_;
  std::vector<std::string> extra_logs_;
  std::string gnuplot_option_, gnuplot_;
  fs::path base_dir_;
  std::string run_dir_;
  std::string training_log_;
  fs::path tmp_;

  std::vector<Row> rows_;
  std::vector<Prediction> predictions_;
  std::vector<std::string> setups_;
  std::vector<Csv> logs_;
  int training_index_ = -1;
  std::vector<std::string> missing_logs_;
  std::vector<std::string> warnings_;
  std::vector<Figure> figures_;
  std::vector<std::string> learning_;
  std::string room_setup_;
  std::size_t room_count_ = 0;
};

void register_nodes(Registry& registry) {
  registry.add(make_node_type<LocalizationReport>("report.localization"));
}

}  // namespace
}  // namespace w2p::report

W2P_PLUGIN("report", "0.1.0", w2p::report::register_nodes)
