#include "run/progress.hpp"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <sstream>

namespace w2p {

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto s = static_cast<long long>(std::llround(seconds));
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", s / 3600, (s % 3600) / 60);
  } else if (s >= 60) {
    std::snprintf(buf, sizeof buf, "%lldm%02llds", s / 60, s % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%llds", s);
  }
  return buf;
}

ProgressReporter::ProgressReporter(bool quiet, Print print, Snapshot snapshot)
    : quiet_(quiet),
      tty_(!print && isatty(STDERR_FILENO) != 0),
      print_(print ? std::move(print)
                   : Print([](const std::string& line) { std::cerr << line << std::flush; })),
      snapshot_(std::move(snapshot)) {}

ProgressReporter::~ProgressReporter() { stop(); }

void ProgressReporter::start() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (running_) return;
  running_ = true;
  thread_ = std::thread([this] { loop(); });
}

void ProgressReporter::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!running_) return;
    running_ = false;
  }
  wake_.notify_all();
  thread_.join();
  std::lock_guard<std::mutex> lock(mutex_);
  clear_line();
}

void ProgressReporter::clear_line() {
  if (line_shown_) {
    print_("\r\x1b[2K");
    line_shown_ = false;
  }
}

void ProgressReporter::log(const std::string& line) {
  std::lock_guard<std::mutex> lock(mutex_);
  clear_line();
  print_(line + "\n");
}

void ProgressReporter::loop() {
  const auto t0 = std::chrono::steady_clock::now();
  const auto period = tty_ ? std::chrono::milliseconds(250) : std::chrono::milliseconds(100);
  auto last_plain = t0;
  std::unique_lock<std::mutex> lock(mutex_);
  while (running_) {
    wake_.wait_for(lock, period);
    if (!running_) break;
    lock.unlock();
    if (tick_) tick_();
    lock.lock();
    if (quiet_) continue;
    const auto now = std::chrono::steady_clock::now();
    const double elapsed = std::chrono::duration<double>(now - t0).count();
    if (tty_) {
      std::string line = render(elapsed);
      if (line.size() > 200) line.resize(200);
      print_("\r\x1b[2K" + line);
      line_shown_ = true;
    } else if (now - last_plain >= std::chrono::seconds(10)) {
      print_(render(elapsed) + "\n");
      last_plain = now;
    }
  }
}

std::string ProgressReporter::render(double elapsed) {
  const std::vector<ProgressRow> rows = snapshot_();
  std::vector<std::uint64_t> done;
  for (const auto& r : rows) done.push_back(r.done);
  history_.emplace_back(elapsed, done);
  // Rates over the last ~5 s follow changes in speed; the ETA divides by the rate over the last
  // ~10 minutes, which steadies it when items come in bursts (a training step every few seconds)
  // and through pauses (a trainer's validation after each epoch).
  while (history_.size() > 2 && elapsed - history_.front().first > kEtaWindowSeconds) {
    history_.pop_front();
  }
  const auto since = [&](double window) {
    auto it = history_.begin();
    while (std::next(it) != history_.end() && elapsed - std::next(it)->first >= window) ++it;
    return it;
  };
  const auto recent = since(kRateWindowSeconds);
  const auto rate_over = [&](std::size_t i, const auto& from) {
    const double dt = elapsed - from->first;
    return (dt > 0.5 && i < from->second.size())
               ? static_cast<double>(done[i] - from->second[i]) / dt
               : 0.0;
  };
  std::ostringstream out;
  out << "[" << format_duration(elapsed) << "]";
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const ProgressRow& r = rows[i];
    out << " " << r.name << " " << r.done;
    if (r.expected > 0) out << "/" << r.expected;
    const double rate = rate_over(i, recent);
    if (rate > 0) {
      char buf[32];
      std::snprintf(buf, sizeof buf, rate >= 100 ? " %.0f/s" : " %.3g/s", rate);
      out << buf;
    }
    const double eta_rate = rate_over(i, history_.begin());
    if (r.expected > r.done && eta_rate > 0) {
      out << " ETA " << format_duration(static_cast<double>(r.expected - r.done) / eta_rate);
    }
    if (!r.status.empty()) out << " (" << r.status << ")";
    if (i + 1 < rows.size()) out << " |";
  }
  return out.str();
}

}  // namespace w2p
