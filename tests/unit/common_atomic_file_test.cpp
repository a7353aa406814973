#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "lorakit/atomic_file.hpp"
#include "lorakit/error.hpp"

namespace lorakit {
namespace {

namespace fs = std::filesystem;

class AtomicFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device device;
    folder_ = fs::path(::testing::TempDir()) /
              ("lorakit_atomic_" + std::to_string(::getpid()) + "_" + std::to_string(device()));
    fs::create_directories(folder_);
  }
  void TearDown() override { fs::remove_all(folder_); }

  std::vector<std::string> folder_entries() const {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(folder_)) {
      names.push_back(entry.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  static std::string contents(const fs::path& path) {
    std::ifstream stream(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(stream), std::istreambuf_iterator<char>()};
  }

  static void write_file(const fs::path& path, const std::string& text) {
    std::ofstream(path, std::ios::binary) << text;
  }

  fs::path folder_;
};

TEST_F(AtomicFileTest, CommitPublishesTheBytesAndLeavesNoTemp) {
  const fs::path target = folder_ / "out.safetensors";
  {
    AtomicFile file(target, false);
    EXPECT_EQ(file.temp_path().parent_path(), folder_);
    const std::string temp_name = file.temp_path().filename().string();
    EXPECT_THAT(temp_name, ::testing::StartsWith(".out.safetensors."));
    EXPECT_THAT(temp_name, ::testing::EndsWith(".tmp"));
    EXPECT_TRUE(fs::exists(file.temp_path()));
    EXPECT_FALSE(fs::exists(target));
    file.write(std::string_view("hello "));
    const std::string big(3'000'000, 'x');
    file.write(std::as_bytes(std::span(big)));
    EXPECT_EQ(file.written(), 6u + big.size());
    file.commit();
  }
  EXPECT_EQ(contents(target), "hello " + std::string(3'000'000, 'x'));
  EXPECT_EQ(folder_entries(), std::vector<std::string>{"out.safetensors"});
}

TEST_F(AtomicFileTest, WriteAtReplacesBytesAlreadyWritten) {
  const fs::path target = folder_ / "patched";
  {
    AtomicFile file(target, false);
    file.write(std::string_view("header--data"));
    file.write_at(6, "++");
    file.write_at(0, "H");
    EXPECT_EQ(file.written(), 12u);
    EXPECT_THROW(file.write_at(11, "xy"), Error);  // past what was written
    EXPECT_THROW(file.write_at(~std::uint64_t{0}, "x"), Error);
    file.write(std::string_view("!"));
    file.commit();
  }
  EXPECT_EQ(contents(target), "Header++data!");
}

TEST_F(AtomicFileTest, FileModeIs0644LessUmask) {
  const mode_t mask = ::umask(022);
  ::umask(mask);
  const fs::path target = folder_ / "mode";
  {
    AtomicFile file(target, false);
    file.commit();
  }
  struct stat info {};
  ASSERT_EQ(::stat(target.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0644u & ~mask);
}

TEST_F(AtomicFileTest, DestructionWithoutCommitRemovesTheTempAndLeavesNoTarget) {
  const fs::path target = folder_ / "never";
  fs::path temp;
  {
    AtomicFile file(target, false);
    temp = file.temp_path();
    file.write(std::string_view("partial"));
  }
  EXPECT_FALSE(fs::exists(temp));
  EXPECT_FALSE(fs::exists(target));
  EXPECT_TRUE(folder_entries().empty());
}

TEST_F(AtomicFileTest, RefusesAnExistingTargetUnlessOverwriting) {
  const fs::path target = folder_ / "existing";
  write_file(target, "old");
  try {
    AtomicFile file(target, false);
    FAIL() << "existing target accepted";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::output_exists);
    EXPECT_THAT(error.what(), ::testing::HasSubstr(target.string()));
  }
  EXPECT_EQ(contents(target), "old");
  EXPECT_EQ(folder_entries(), std::vector<std::string>{"existing"});

  {
    AtomicFile file(target, true);
    file.write(std::string_view("new"));
    EXPECT_EQ(contents(target), "old");  // untouched until commit
    file.commit();
  }
  EXPECT_EQ(contents(target), "new");
  EXPECT_EQ(folder_entries(), std::vector<std::string>{"existing"});
}

TEST_F(AtomicFileTest, UncommittedOverwriteLeavesTheTargetUntouched) {
  const fs::path target = folder_ / "keep";
  write_file(target, "original");
  {
    AtomicFile file(target, true);
    file.write(std::string_view("replacement"));
  }
  EXPECT_EQ(contents(target), "original");
  EXPECT_EQ(folder_entries(), std::vector<std::string>{"keep"});
}

TEST_F(AtomicFileTest, TargetAppearingBeforeCommitIsNeverClobbered) {
  const fs::path target = folder_ / "race";
  {
    AtomicFile file(target, false);
    file.write(std::string_view("mine"));
    write_file(target, "theirs");
    try {
      file.commit();
      FAIL() << "commit replaced a file that appeared meanwhile";
    } catch (const Error& error) {
      EXPECT_EQ(error.code(), ErrorCode::output_exists);
    }
  }
  EXPECT_EQ(contents(target), "theirs");
  EXPECT_EQ(folder_entries(), std::vector<std::string>{"race"});
}

TEST_F(AtomicFileTest, DanglingSymlinkCountsAsExisting) {
  const fs::path target = folder_ / "link";
  fs::create_symlink(folder_ / "nowhere", target);
  EXPECT_THROW(AtomicFile(target, false), Error);
}

TEST_F(AtomicFileTest, MissingFolderIsAnOpenError) {
  try {
    AtomicFile file(folder_ / "no" / "such" / "out", false);
    FAIL();
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::io_open);
  }
}

TEST_F(AtomicFileTest, SameFileComparesDeviceAndInode) {
  const fs::path a = folder_ / "a";
  const fs::path b = folder_ / "b";
  write_file(a, "x");
  write_file(b, "x");
  fs::create_hard_link(a, folder_ / "a_hard");
  fs::create_symlink(a, folder_ / "a_soft");
  EXPECT_TRUE(same_file(a, a));
  EXPECT_TRUE(same_file(a, folder_ / "." / "a"));
  EXPECT_TRUE(same_file(a, folder_ / "a_hard"));
  EXPECT_TRUE(same_file(folder_ / "a_soft", a));
  EXPECT_FALSE(same_file(a, b));
  EXPECT_FALSE(same_file(a, folder_ / "missing"));
  EXPECT_FALSE(same_file(folder_ / "missing", folder_ / "missing"));
}

TEST(TempNames, OnlyTheExactPatternOfTheGivenTarget) {
  EXPECT_TRUE(is_temp_name_of(".a.safetensors.0123456789ab.tmp", "a.safetensors"));
  EXPECT_TRUE(is_temp_name_of("..a.safetensors.0123456789ab.tmp.abcdef012345.tmp", "a.safetensors"));
  EXPECT_FALSE(is_temp_name_of(".a.safetensors.0123456789ab.tmp", "b.safetensors"));
  EXPECT_FALSE(is_temp_name_of(".a.safetensors.0123456789AB.tmp", "a.safetensors"));
  EXPECT_FALSE(is_temp_name_of(".a.safetensors.0123456789a.tmp", "a.safetensors"));
  EXPECT_FALSE(is_temp_name_of(".a.safetensors.0123456789abc.tmp", "a.safetensors"));
  EXPECT_FALSE(is_temp_name_of("a.safetensors.0123456789ab.tmp", "a.safetensors"));
  EXPECT_FALSE(is_temp_name_of(".a.safetensors.0123456789ab.tmp.bak", "a.safetensors"));
  EXPECT_FALSE(is_temp_name_of(".xa.safetensors.0123456789ab.tmp", "a.safetensors"));
  EXPECT_TRUE(is_any_temp_name(".x.0123456789ab.tmp"));
  EXPECT_FALSE(is_any_temp_name("..0123456789ab.tmp"));
  EXPECT_FALSE(is_any_temp_name("notes.tmp"));
}

TEST_F(AtomicFileTest, TempPathsFollowTheTempPattern) {
  const fs::path target = folder_ / "x.safetensors";
  const fs::path first = random_temp_path(target);
  EXPECT_EQ(first.parent_path(), folder_);
  EXPECT_TRUE(is_temp_name_of(first.filename().string(), "x.safetensors"));
  EXPECT_NE(first, random_temp_path(target));
  AtomicFile file(target, false);
  EXPECT_TRUE(is_temp_name_of(file.temp_path().filename().string(), "x.safetensors"));
}

TEST_F(AtomicFileTest, StaleTempFilesOfTheTargetAreRemovedLiveOnesAndOthersKept) {
  const fs::path target = folder_ / "out.safetensors";
  const std::string stale = ".out.safetensors.0123456789ab.tmp";  // a killed writer's: nobody holds it
  write_file(folder_ / stale, "partial");
  write_file(folder_ / ".other.safetensors.0123456789ab.tmp", "another target's");
  write_file(folder_ / ".out.safetensors.tmp", "not the pattern");
  fs::create_symlink(folder_ / "out.safetensors", folder_ / ".out.safetensors.abcdefabcdef.tmp");
  AtomicFile live(target, false);  // a writer of the same target, running now
  live.write(std::string_view("in progress"));

  const std::vector<fs::path> removed = remove_stale_temp_files(target);
  EXPECT_EQ(removed, std::vector<fs::path>{folder_ / stale});
  EXPECT_TRUE(fs::exists(live.temp_path()));
  EXPECT_TRUE(fs::is_symlink(folder_ / ".out.safetensors.abcdefabcdef.tmp"));
  EXPECT_TRUE(fs::exists(folder_ / ".other.safetensors.0123456789ab.tmp"));
  EXPECT_TRUE(fs::exists(folder_ / ".out.safetensors.tmp"));
  live.commit();
  EXPECT_EQ(contents(target), "in progress");
  EXPECT_TRUE(remove_stale_temp_files(target).empty());
}

// The lock is what protects a live writer: a writer in another process, with its temp file open, keeps it.
TEST_F(AtomicFileTest, TempFileOfAWriterInAnotherProcessIsKept) {
  const fs::path target = folder_ / "shared.safetensors";
  int ready[2];
  int finish[2];
  ASSERT_EQ(::pipe(ready), 0);
  ASSERT_EQ(::pipe(finish), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    AtomicFile file(target, false);
    file.write(std::string_view("child"));
    char byte = 1;
    (void)!::write(ready[1], &byte, 1);
    (void)!::read(finish[0], &byte, 1);
    file.commit();
    ::_exit(0);
  }
  char byte = 0;
  ASSERT_EQ(::read(ready[0], &byte, 1), 1);
  EXPECT_TRUE(remove_stale_temp_files(target).empty());
  ASSERT_EQ(::write(finish[1], &byte, 1), 1);
  int status = 0;
  ::waitpid(child, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ(contents(target), "child");
  EXPECT_EQ(folder_entries(), std::vector<std::string>{"shared.safetensors"});
  for (int fd : {ready[0], ready[1], finish[0], finish[1]}) ::close(fd);
}

}  // namespace
}  // namespace lorakit
