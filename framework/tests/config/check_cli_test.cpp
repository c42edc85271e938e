// Runs the built w2p-run --check on a pipeline with many errors and on the smoke pipeline.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

#include "fixture_expectations.hpp"
#include "support/process.hpp"

namespace {

const std::string kMultiError =
    std::string(W2P_CFG_FIXTURE_DIR) + "/malformed/42_many_independent_errors.yaml";

struct Result {
  int exit_code = -1;
  std::string err;  // stderr only
};

Result check(const std::string& pipeline) {
  using w2p::test::shell_quote;
  const auto out = w2p::test::run_command(shell_quote(W2P_RUN_EXE) + " --check --plugin-path " +
                                          shell_quote(W2P_CFGTEST_PLUGIN_DIR) + " " +
                                          shell_quote(pipeline) + " 2>&1 >/dev/null");
  return Result{out.exit_code, out.output};
}

TEST(W2pRunCheck, ReportsEveryErrorInCompilerFormat) {
  const cfgtest::Expectations x = cfgtest::read_expectations(kMultiError);
  ASSERT_GE(x.errors.size(), 5u);
  ASSERT_GE(x.count, 5);
  const Result r = check(kMultiError);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  for (const auto& want : x.errors) {
    // "14:7: error: ..." printed as "<absolute path>:14:7: error: ..."
    EXPECT_NE(("\n" + r.err).find("\n" + kMultiError + ":" + want), std::string::npos)
        << "expected '" << kMultiError << ":" << want << "' on its own line in:\n"
        << r.err;
  }
  for (const auto& note : x.notes) {
    EXPECT_NE(r.err.find("note: "), std::string::npos);
    EXPECT_NE(r.err.find(note), std::string::npos) << note << " in:\n" << r.err;
  }
  // Every error line has the form file:line:col: error:
  std::size_t errors = 0;
  std::size_t pos = 0;
  while ((pos = r.err.find("error: ", pos)) != std::string::npos) {
    const std::size_t start =
        r.err.rfind('\n', pos) == std::string::npos ? 0 : r.err.rfind('\n', pos) + 1;
    const std::string head = r.err.substr(start, pos - start);
    EXPECT_EQ(head.rfind(kMultiError + ":", 0), 0u) << "line without file: " << head;
    ++errors;
    pos += 7;
  }
  EXPECT_EQ(errors, static_cast<std::size_t>(x.count)) << r.err;
  EXPECT_NE(r.err.find("w2p-run: " + std::to_string(x.count) + " errors\n"), std::string::npos)
      << r.err;
}

TEST(W2pRunCheck, SmokePipelineIsValid) {
  const Result r = check(W2P_SMOKE_PIPELINE);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find(": ok ("), std::string::npos) << r.err;
}

}  // namespace
