// The progress line's rate and ETA: rates follow the last seconds, the ETA steadies over bursts.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "run/progress.hpp"

namespace {

// "... ETA 1h02m ..." -> seconds (h/m/s forms of format_duration).
double eta_seconds(const std::string& line) {
  const auto at = line.find("ETA ");
  if (at == std::string::npos) return -1;
  double total = 0, value = 0;
  for (std::size_t i = at + 4; i < line.size() && line[i] != ' '; ++i) {
    const char c = line[i];
    if (c >= '0' && c <= '9') {
      value = value * 10 + (c - '0');
    } else {
      total += value * (c == 'd' ? 86400 : c == 'h' ? 3600 : c == 'm' ? 60 : 1);
      value = 0;
    }
  }
  return total;
}

// One progress row whose count the test advances, rendered at times the test chooses.
struct Row {
  Row(const char* name, std::uint64_t expected)
      : reporter(
            true, [](const std::string&) {},
            [this, name, expected] {
              return std::vector<w2p::ProgressRow>{{name, done, expected, ""}};
            }) {}
  std::uint64_t done = 0;
  w2p::ProgressReporter reporter;
};

TEST(ProgressLine, EtaOfABurstySourceStaysNearTheMeanRate) {
  // A trainer's source: 64 items every 10 s (one batch per step), 6.4 items/s on average;
  // 10,000 items left after 2 minutes -> ~26 min.
  Row row("reader", 20000);
  int lines = 0;
  for (int tick = 0; tick <= 4 * 600; ++tick) {  // 4 lines a second for 10 minutes
    const double t = tick * 0.25;
    if (tick % 40 == 0) row.done += 64;
    const std::string line = row.reporter.render(t);
    if (t < 120) continue;
    const double expected = static_cast<double>(20000 - row.done) / 6.4;
    EXPECT_NEAR(eta_seconds(line) / expected, 1.0, 0.1) << "at " << t << " s: " << line;
    ++lines;
  }
  EXPECT_EQ(lines, 4 * 480 + 1);
}

TEST(ProgressLine, EtaRisesLittleThroughAPause) {
  // 64 items every 10 s for 10 minutes, then a 2-minute pause (a trainer's validation).
  Row row("reader", 20000);
  std::string line;
  for (int tick = 0; tick <= 4 * 720; ++tick) {
    if (tick % 40 == 0 && tick <= 4 * 600) row.done += 64;
    line = row.reporter.render(tick * 0.25);
  }
  const double steady = static_cast<double>(20000 - row.done) / 6.4;
  EXPECT_GT(eta_seconds(line) / steady, 1.0) << line;
  EXPECT_LT(eta_seconds(line) / steady, 1.3) << line;
}

TEST(ProgressLine, RateFollowsTheLastSeconds) {
  Row row("src", 0);
  std::string line;
  for (int tick = 0; tick <= 400; ++tick) {  // 100 items/s for 60 s, then 8/s for 40 s
    row.done += tick < 240 ? 25 : 2;
    line = row.reporter.render(tick * 0.25);
  }
  EXPECT_NE(line.find(" 8/s"), std::string::npos) << line;  // 8 items/s over the last 5 s
  EXPECT_EQ(line.find("ETA"), std::string::npos) << line;   // no size announced
}

}  // namespace
