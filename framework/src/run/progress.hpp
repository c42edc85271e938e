// Progress display: on a terminal one line redrawn a few times a second (per-node items, rate,
// ETA of the sources that announced their size); otherwise a plain line every 10 seconds.
// Node log lines are printed above the progress line.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace w2p {

struct ProgressRow {
  std::string name;
  std::uint64_t done = 0;
  std::uint64_t expected = 0;  ///< 0 = unknown
  std::string status;
};

class ProgressReporter {
 public:
  using Snapshot = std::function<std::vector<ProgressRow>()>;
  using Print = std::function<void(const std::string&)>;

  /// `print` receives complete lines (default: stderr); `tty` selects the redrawn line.
  ProgressReporter(bool quiet, Print print, Snapshot snapshot);
  ~ProgressReporter();
  void start();
  void stop();
  /// A log line from a node (printed even when quiet, for warnings).
  void log(const std::string& line);
  /// Periodic callback on the reporter thread (used to notice Ctrl-C).
  void set_tick(std::function<void()> tick) { tick_ = std::move(tick); }
  /// The progress line `elapsed` seconds into the run (the reporter thread calls it a few times
  /// a second; each call adds a snapshot to the rate history).
  std::string render(double elapsed);

 private:
  void loop();
  void clear_line();

  bool quiet_;
  bool tty_;
  Print print_;
  Snapshot snapshot_;
  std::function<void()> tick_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool running_ = false;
  bool line_shown_ = false;
  std::thread thread_;
  static constexpr double kRateWindowSeconds = 5.0;
  static constexpr double kEtaWindowSeconds = 600.0;
  std::deque<std::pair<double, std::vector<std::uint64_t>>> history_;
};

/// "1h02m", "3m05s", "12s".
std::string format_duration(double seconds);

}  // namespace w2p
