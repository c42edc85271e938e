// Runs the built w2p-inspect on the test plugins and checks what it prints and its exit status.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

#include "support/process.hpp"

namespace {

struct Result {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

/// Runs w2p-inspect with only the given test plugin folder on its search path.
Result inspect(const std::string& plugin_folder, const std::string& args) {
  const std::string command = std::string("'") + W2P_INSPECT_EXE + "' --no-default-path " +
                              "--plugin-path '" + W2P_TEST_PLUGIN_ROOT + "/" + plugin_folder +
                              "' " + args + " 2>&1";
  const auto out = w2p::test::run_command(command);
  return Result{out.exit_code, out.output};
}

void expect_contains(const Result& r, const std::string& text) {
  EXPECT_NE(r.output.find(text), std::string::npos) << "expected '" << text << "' in:\n"
                                                    << r.output;
}

TEST(W2pInspect, ListsPluginsAndNodeTypes) {
  const Result r = inspect("good", "");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  expect_contains(r, "testgood 1.2.3");
  expect_contains(r, "libw2p_testgood.so");
  expect_contains(r, "testgood.counter");
  expect_contains(r, "Emits the integers 0 .. count-1, one per stream position.");
  expect_contains(r, "testgood.scale");
  EXPECT_EQ(r.output.find("A trivial source for loader tests."), std::string::npos)
      << "the listing shows one line of doc";
}

TEST(W2pInspect, DocumentsANodeType) {
  const Result r = inspect("good", "testgood.counter");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  expect_contains(r, "A trivial source for loader tests.");
  expect_contains(r, "output  value  {value: i64[]}");
  expect_contains(r, "count  int  default 3  in [1, 1000]  How many integers.");
  expect_contains(r, "repeatable: yes");
  expect_contains(r, "source: yes");
}

TEST(W2pInspect, SaysWhenPortsNeedARequiredOption) {
  const Result r = inspect("good", "testgood.scale");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  expect_contains(r, "ports depend on options:");
  expect_contains(r, "size");
  expect_contains(r, "required");
  expect_contains(r, "default 2");
  expect_contains(r, "one of: fast, exact");
}

TEST(W2pInspect, ListsOnePlugin) {
  const Result r = inspect("good", "testgood");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  expect_contains(r, "testgood.counter");
  expect_contains(r, "testgood.scale");
}

TEST(W2pInspect, UnknownIdSuggestsAndExits2) {
  const Result r = inspect("good", "testgood.countr");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  expect_contains(r, "unknown node type or plugin 'testgood.countr'");
  expect_contains(r, "did you mean 'testgood.counter'?");
}

TEST(W2pInspect, PluginLoadErrorExits3) {
  const Result r = inspect("badabi", "");
  EXPECT_EQ(r.exit_code, 3) << r.output;
  expect_contains(r, "libw2p_badabi.so");
  expect_contains(r, "rebuild the plugin against this w2p");
}

TEST(W2pInspect, PrintsJson) {
  const Result list = inspect("good", "--json");
  EXPECT_EQ(list.exit_code, 0) << list.output;
  expect_contains(list, "\"name\": \"testgood\"");
  expect_contains(list, "\"id\": \"testgood.counter\"");

  const Result node = inspect("good", "--json testgood.counter");
  EXPECT_EQ(node.exit_code, 0) << node.output;
  expect_contains(node,
                  "\"key\": \"count\", \"type\": \"int\", \"required\": false, \"default\": 3");
  expect_contains(node, "\"schema\": \"{value: i64[]}\"");
  expect_contains(node, "\"repeatable\": true");
}

TEST(W2pInspect, RejectsBadArguments) {
  EXPECT_EQ(inspect("good", "--frobnicate").exit_code, 1);
  EXPECT_EQ(inspect("good", "a b").exit_code, 1);
}

}  // namespace
