// Scanning batch inputs: folders, recursion, globs, output mapping, exclusions and leftover temp files.
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "batch_test_util.hpp"
#include "lorakit/batch.hpp"
#include "lorakit/error.hpp"

namespace lorakit::batch {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using testing::files_below;
using testing::ScratchFolder;
using testing::write_text;

std::vector<std::string> relatives(const std::vector<Item>& items) {
  std::vector<std::string> names;
  for (const Item& item : items) {
    names.push_back(item.relative);
  }
  return names;
}

ErrorCode scan_error(const ScanOptions& options) {
  try {
    scan_inputs(options);
  } catch (const Error& error) {
    return error.code();
  }
  ADD_FAILURE() << "scan_inputs did not throw";
  return ErrorCode::internal;
}

// in/ a.safetensors notes.txt sub/b.safetensors sub/deep/c.SAFETENSORS .a.safetensors.0123456789ab.tmp
//     out/old.safetensors (the output folder, inside the input tree)
class ScanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : {"a.safetensors", "notes.txt", "sub/b.safetensors", "sub/deep/c.SAFETENSORS",
                             ".a.safetensors.0123456789ab.tmp", "out/old.safetensors"}) {
      write_text(in() / name, name);
    }
  }
  fs::path in() const { return scratch_ / "in"; }
  fs::path out() const { return scratch_ / "in" / "out"; }
  ScanOptions options(std::vector<std::string> inputs) const {
    ScanOptions scan;
    scan.inputs = std::move(inputs);
    scan.output_dir = out();
    return scan;
  }

  ScratchFolder scratch_;
};

TEST_F(ScanTest, FolderWithoutRecursionTakesItsOwnFilesOnly) {
  const std::vector<Item> items = scan_inputs(options({in().string()}));
  EXPECT_THAT(relatives(items), ElementsAre("a.safetensors", "notes.txt"));
  EXPECT_EQ(items[0].input, in() / "a.safetensors");
  EXPECT_EQ(items[0].output, out() / "a.safetensors");
  EXPECT_TRUE(items[0].is_safetensors);
  EXPECT_FALSE(items[1].is_safetensors);
  EXPECT_TRUE(items[1].output.empty());
  EXPECT_TRUE(items[0].problem.empty());
}

TEST_F(ScanTest, RecursionMirrorsTheTreeAndNeverEntersTheOutputFolder) {
  ScanOptions scan = options({in().string()});
  scan.recursive = true;
  scan.suffix = "_r";
  const std::vector<Item> items = scan_inputs(scan);
  EXPECT_THAT(relatives(items),
              ElementsAre("a.safetensors", "notes.txt", "sub/b.safetensors", "sub/deep/c.SAFETENSORS"));
  EXPECT_EQ(items[0].output, out() / "a_r.safetensors");
  EXPECT_EQ(items[2].output, out() / "sub" / "b_r.safetensors");
  EXPECT_EQ(items[3].output, out() / "sub" / "deep" / "c_r.SAFETENSORS");
  EXPECT_TRUE(items[3].is_safetensors);
}

TEST_F(ScanTest, GlobsTheShellDidNotExpandAreExpanded) {
  const std::vector<Item> items = scan_inputs(options({(in() / "*.safetensors").string(), (in() / "sub/*").string()}));
  // A pattern's matches are inputs of their own: a file is named by its name, a folder contributes its files.
  EXPECT_THAT(relatives(items), ElementsAre("a.safetensors", "b.safetensors", "c.SAFETENSORS"));
  EXPECT_EQ(items[1].output, out() / "b.safetensors");
  EXPECT_EQ(items[2].input, in() / "sub" / "deep" / "c.SAFETENSORS");
}

TEST_F(ScanTest, TheSameFileReachedTwiceIsOneItem) {
  const std::vector<Item> items = scan_inputs(options({in().string(), (in() / "a.safetensors").string()}));
  EXPECT_THAT(relatives(items), ElementsAre("a.safetensors", "notes.txt"));
}

TEST_F(ScanTest, UsageErrors) {
  EXPECT_EQ(scan_error(options({(in() / "missing.safetensors").string()})), ErrorCode::invalid_argument);
  EXPECT_EQ(scan_error(options({(in() / "*.ckpt").string()})), ErrorCode::invalid_argument);
  EXPECT_EQ(scan_error(options({})), ErrorCode::invalid_argument);
  ScanOptions same_folder = options({in().string()});
  same_folder.output_dir = in();
  EXPECT_EQ(scan_error(same_folder), ErrorCode::invalid_argument);
  ScanOptions both = options({in().string()});
  both.in_place = true;
  EXPECT_EQ(scan_error(both), ErrorCode::invalid_argument);
  ScanOptions suffix_in_place = options({in().string()});
  suffix_in_place.output_dir.clear();
  suffix_in_place.in_place = true;
  suffix_in_place.suffix = "_r";
  EXPECT_EQ(scan_error(suffix_in_place), ErrorCode::invalid_argument);
  ScanOptions slash = options({in().string()});
  slash.suffix = "/r";
  EXPECT_EQ(scan_error(slash), ErrorCode::invalid_argument);
}

TEST_F(ScanTest, OutputCollisionsAndOutputsOverInputsAreProblems) {
  write_text(scratch_ / "other" / "a.safetensors", "x");
  fs::create_directories(out());
  fs::create_hard_link(in() / "sub" / "b.safetensors", out() / "b.safetensors");
  const std::vector<Item> items = scan_inputs(options({(in() / "a.safetensors").string(),
                                                       (scratch_ / "other" / "a.safetensors").string(),
                                                       (in() / "sub" / "b.safetensors").string()}));
  ASSERT_EQ(items.size(), 3U);
  EXPECT_TRUE(items[0].problem.empty());
  EXPECT_EQ(items[1].problem, "the output " + (out() / "a.safetensors").string() + " is also the output of " +
                                  (in() / "a.safetensors").string());
  EXPECT_EQ(items[2].relative, "b.safetensors");
  EXPECT_EQ(items[2].problem, "the output would replace the input");
}

TEST_F(ScanTest, InputsInsideTheOutputFolderAreExcluded) {
  // As when the shell expands `in/*` while OUTDIR is in/out.
  const std::vector<Item> items =
      scan_inputs(options({(in() / "a.safetensors").string(), out().string(), (out() / "old.safetensors").string()}));
  EXPECT_THAT(relatives(items), ElementsAre("a.safetensors"));
  EXPECT_EQ(scan_error(options({out().string()})), ErrorCode::invalid_argument);
  EXPECT_EQ(scan_error(options({(out() / "old.safetensors").string()})), ErrorCode::invalid_argument);
}

TEST_F(ScanTest, InPlaceOutputsAreTheInputs) {
  ScanOptions scan = options({in().string()});
  scan.output_dir.clear();
  scan.in_place = true;
  scan.recursive = true;
  const std::vector<Item> items = scan_inputs(scan);
  ASSERT_EQ(items.size(), 5U);  // out/ is an ordinary sub-folder here
  for (const Item& item : items) {
    EXPECT_EQ(item.output, item.is_safetensors ? item.input : fs::path()) << item.relative;
    EXPECT_TRUE(item.problem.empty());
  }
}

TEST(LeftoverFiles, RemovesOnlyThoseOfTheItemsOwnOutputs) {
  ScratchFolder scratch;
  const fs::path out = scratch / "out";
  for (const char* name : {".a.safetensors.0123456789ab.tmp", "sub/..b.safetensors.0123456789ab.tmp.0123456789ab.tmp",
                           ".other.safetensors.0123456789ab.tmp", ".a.safetensors.tmp", "a.safetensors",
                           "sub/.a.safetensors.0123456789ab.tmp"}) {
    write_text(out / name, "x");
  }
  Item a;
  a.output = out / "a.safetensors";
  Item b;
  b.output = out / "sub" / "b.safetensors";
  Item not_written;  // skipped items have no output
  const std::vector<fs::path> removed = remove_leftover_temp_files({a, b, not_written});
  EXPECT_EQ(removed.size(), 2U);
  // ".other…" may belong to another shard running right now; "sub/.a…" is not b's.
  EXPECT_THAT(files_below(out), ElementsAre(".a.safetensors.tmp", ".other.safetensors.0123456789ab.tmp",
                                            "a.safetensors", "sub/.a.safetensors.0123456789ab.tmp"));
  EXPECT_THAT(remove_leftover_temp_files({}), IsEmpty());
}

}  // namespace
}  // namespace lorakit::batch
