// Shards: a fixed hash, disjoint slices that cover everything, and the Slurm / Kubernetes environments.
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "lorakit/batch.hpp"
#include "lorakit/error.hpp"

namespace lorakit::batch {
namespace {

Environment fake_environment(std::map<std::string, std::string> variables) {
  return [variables = std::move(variables)](const char* name) -> std::optional<std::string> {
    const auto found = variables.find(name);
    return found == variables.end() ? std::nullopt : std::optional(found->second);
  };
}

template <typename F>
std::string usage_error(F&& call) {
  try {
    call();
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::invalid_argument);
    return error.what();
  }
  ADD_FAILURE() << "no error";
  return {};
}

TEST(Fnv1a64, PublishedTestVectors) {
  // From the FNV reference test suite (Fowler/Noll/Vo, FNV-1a 64-bit).
  EXPECT_EQ(fnv1a64(""), 0xcbf29ce484222325ULL);
  EXPECT_EQ(fnv1a64("a"), 0xaf63dc4c8601ec8cULL);
  EXPECT_EQ(fnv1a64("foobar"), 0x85944171f73967e8ULL);
}

TEST(Shard, MembershipIsTheHashModuloTheCount) {
  // 0xaf63dc4c8601ec8c mod 4 = 0 (…8c), mod 3 = 1, mod 5 = 1; written out so a change of hash shows.
  EXPECT_TRUE(in_shard("a", Shard{0, 4}));
  EXPECT_TRUE(in_shard("a", Shard{1, 3}));
  EXPECT_TRUE(in_shard("a", Shard{1, 5}));
  EXPECT_FALSE(in_shard("a", Shard{1, 4}));
  EXPECT_TRUE(in_shard("anything", Shard{0, 1}));
}

TEST(Shard, SlicesAreDisjointAndCoverAllItems) {
  std::vector<Item> items;
  for (int i = 0; i < 300; ++i) {
    Item item;
    item.relative = "folder" + std::to_string(i % 7) + "/lora_" + std::to_string(i) + ".safetensors";
    items.push_back(item);
  }
  for (std::uint64_t count : {1U, 2U, 3U, 5U, 8U}) {
    std::multiset<std::string> seen;
    for (std::uint64_t index = 0; index < count; ++index) {
      const std::vector<Item> slice = select_shard(items, Shard{index, count});
      EXPECT_GT(slice.size(), 300 / count / 2) << index << "/" << count << " is badly unbalanced";
      for (const Item& item : slice) {
        seen.insert(item.relative);
      }
    }
    ASSERT_EQ(seen.size(), items.size()) << count;
    for (const Item& item : items) {
      EXPECT_EQ(seen.count(item.relative), 1U) << item.relative << " in " << count << " shards";
    }
  }
}

TEST(Shard, ParsesIndexSlashCount) {
  const Shard shard = parse_shard("2/5");
  EXPECT_EQ(shard.index, 2U);
  EXPECT_EQ(shard.count, 5U);
  EXPECT_EQ(parse_shard("0/1").count, 1U);
  for (const char* bad : {"5/5", "1/0", "2", "/3", "1/", "a/3", "-1/3", "1/3/4", " 1/3", "auto"}) {
    EXPECT_FALSE(usage_error([&] { parse_shard(bad); }).empty()) << bad;
  }
}

TEST(ShardFromEnvironment, SlurmArrayWithOffsetAndStep) {
  Shard shard = shard_from_environment(fake_environment({{"SLURM_ARRAY_TASK_ID", "3"}, {"SLURM_ARRAY_TASK_COUNT", "4"}}));
  EXPECT_EQ(shard.index, 3U);
  EXPECT_EQ(shard.count, 4U);
  // sbatch --array=1-4: ids 1..4 are shards 0..3.
  shard = shard_from_environment(fake_environment(
      {{"SLURM_ARRAY_TASK_ID", "4"}, {"SLURM_ARRAY_TASK_COUNT", "4"}, {"SLURM_ARRAY_TASK_MIN", "1"}}));
  EXPECT_EQ(shard.index, 3U);
  // sbatch --array=10-16:2: ids 10, 12, 14, 16.
  shard = shard_from_environment(fake_environment({{"SLURM_ARRAY_TASK_ID", "14"},
                                                   {"SLURM_ARRAY_TASK_COUNT", "4"},
                                                   {"SLURM_ARRAY_TASK_MIN", "10"},
                                                   {"SLURM_ARRAY_TASK_STEP", "2"}}));
  EXPECT_EQ(shard.index, 2U);
  EXPECT_EQ(shard.count, 4U);
  // Slurm wins over Kubernetes variables.
  shard = shard_from_environment(fake_environment(
      {{"SLURM_ARRAY_TASK_ID", "0"}, {"SLURM_ARRAY_TASK_COUNT", "2"}, {"JOB_COMPLETION_INDEX", "5"}}));
  EXPECT_EQ(shard.count, 2U);
}

TEST(ShardFromEnvironment, KubernetesIndexedJob) {
  const Shard shard =
      shard_from_environment(fake_environment({{"JOB_COMPLETION_INDEX", "7"}, {"LORAKIT_SHARD_COUNT", "8"}}));
  EXPECT_EQ(shard.index, 7U);
  EXPECT_EQ(shard.count, 8U);
}

TEST(ShardFromEnvironment, MissingOrInconsistentVariables) {
  EXPECT_EQ(usage_error([] { shard_from_environment(fake_environment({})); }),
            "--shard auto: neither SLURM_ARRAY_TASK_ID (Slurm job array) nor JOB_COMPLETION_INDEX "
            "(Kubernetes Indexed Job) is set");
  EXPECT_EQ(usage_error([] { shard_from_environment(fake_environment({{"JOB_COMPLETION_INDEX", "1"}})); }),
            "--shard auto: LORAKIT_SHARD_COUNT is not set");
  EXPECT_EQ(usage_error([] {
              shard_from_environment(fake_environment({{"JOB_COMPLETION_INDEX", "1"}, {"LORAKIT_SHARD_COUNT", "x"}}));
            }),
            "--shard auto: LORAKIT_SHARD_COUNT is not a non-negative integer: 'x'");
  EXPECT_FALSE(usage_error([] {
                 shard_from_environment(fake_environment({{"JOB_COMPLETION_INDEX", "2"}, {"LORAKIT_SHARD_COUNT", "2"}}));
               }).empty());
  EXPECT_FALSE(usage_error([] {
                 shard_from_environment(fake_environment({{"SLURM_ARRAY_TASK_ID", "0"},
                                                          {"SLURM_ARRAY_TASK_COUNT", "2"},
                                                          {"SLURM_ARRAY_TASK_MIN", "1"}}));
               }).empty());
  EXPECT_FALSE(usage_error([] {
                 shard_from_environment(fake_environment({{"SLURM_ARRAY_TASK_ID", "11"},
                                                          {"SLURM_ARRAY_TASK_COUNT", "4"},
                                                          {"SLURM_ARRAY_TASK_MIN", "10"},
                                                          {"SLURM_ARRAY_TASK_STEP", "2"}}));
               }).empty());
}

}  // namespace
}  // namespace lorakit::batch
