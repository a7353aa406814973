// Report rows (.csv quoting, .jsonl), rank statistics, the summary table and exit codes.
#include <csignal>
#include <cstdio>
#include <limits>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "batch_test_util.hpp"
#include "lorakit/batch.hpp"
#include "lorakit/report.hpp"
#include "lorakit/error.hpp"

namespace lorakit::batch {
namespace {

using ::testing::HasSubstr;
using testing::read_text;
using testing::ScratchFolder;

FileResult ok_result() {
  FileResult result;
  result.input = "in/a.safetensors";
  result.output = "out/a.safetensors";
  result.status = Status::ok;
  result.input_bytes = 150200000;
  result.output_bytes = 41300000;
  result.retention = 0.961;
  result.ranks = RankStats{4, 8.5, 16};
  result.seconds = 1.23456;
  return result;
}

FileResult failed_result() {
  FileResult result;
  result.input = "in/we\"ird, name\n.safetensors";
  result.status = Status::failed;
  result.input_bytes = 12;
  result.seconds = 0.5;
  result.message = "in/x: header_beyond_eof, \"bad\"";
  return result;
}

TEST(ReportRows, CsvHeaderAndRows) {
  EXPECT_EQ(csv_header(),
            "input,output,status,input_bytes,output_bytes,retention,rank_min,rank_median,rank_max,seconds,message");
  EXPECT_EQ(csv_row(ok_result()), "in/a.safetensors,out/a.safetensors,ok,150200000,41300000,0.961000,4,8.5,16,1.235,");
  // RFC 4180: fields with a comma, quote or line break are quoted, quotes doubled; unknowns are empty.
  EXPECT_EQ(csv_row(failed_result()),
            "\"in/we\"\"ird, name\n.safetensors\",,failed,12,,,,,,0.500,\"in/x: header_beyond_eof, \"\"bad\"\"\"");
}

TEST(ReportRows, JsonlRows) {
  const nlohmann::json ok = nlohmann::json::parse(jsonl_row(ok_result()));
  EXPECT_EQ(ok["input"], "in/a.safetensors");
  EXPECT_EQ(ok["output"], "out/a.safetensors");
  EXPECT_EQ(ok["status"], "ok");
  EXPECT_EQ(ok["input_bytes"], 150200000);
  EXPECT_EQ(ok["output_bytes"], 41300000);
  EXPECT_DOUBLE_EQ(ok["retention"].get<double>(), 0.961);
  EXPECT_EQ(ok["rank_min"], 4);
  EXPECT_DOUBLE_EQ(ok["rank_median"].get<double>(), 8.5);
  EXPECT_EQ(ok["rank_max"], 16);
  EXPECT_DOUBLE_EQ(ok["seconds"].get<double>(), 1.235);
  EXPECT_EQ(ok["message"], "");

  const std::string line = jsonl_row(failed_result());
  EXPECT_EQ(line.find('\n'), std::string::npos);  // one line per row
  const nlohmann::json failed = nlohmann::json::parse(line);
  EXPECT_EQ(failed["input"], "in/we\"ird, name\n.safetensors");
  EXPECT_TRUE(failed["output"].is_null());
  EXPECT_TRUE(failed["output_bytes"].is_null());
  EXPECT_TRUE(failed["retention"].is_null());
  EXPECT_TRUE(failed["rank_median"].is_null());
  EXPECT_EQ(failed["message"], "in/x: header_beyond_eof, \"bad\"");

  FileResult invalid_utf8 = failed_result();
  invalid_utf8.input = "in/\xff.safetensors";
  EXPECT_NO_THROW(nlohmann::json::parse(jsonl_row(invalid_utf8)));
}

TEST(ReportRows, RankStatsOfTheWrittenRanks) {
  ResizeReport report;
  EXPECT_EQ(rank_stats(report), std::nullopt);
  for (std::uint64_t rank : {8, 2, 32}) {
    ModuleReport module;
    module.old_rank = 64;
    module.new_rank = rank;
    report.modules.push_back(module);
  }
  std::optional<RankStats> stats = rank_stats(report);
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->min, 2U);
  EXPECT_EQ(stats->median, 8.0);
  EXPECT_EQ(stats->max, 32U);
  report.modules.push_back(report.modules[0]);
  report.modules.back().new_rank = 16;
  stats = rank_stats(report);
  EXPECT_EQ(stats->median, 12.0);
}

TEST(ReportWriter, WritesByExtension) {
  ScratchFolder scratch;
  {
    ReportWriter csv(scratch / "report.csv");
    csv.write(ok_result());
    ReportWriter jsonl(scratch / "report.jsonl");
    jsonl.write(ok_result());
    jsonl.write(failed_result());
  }
  EXPECT_EQ(read_text(scratch / "report.csv"), csv_header() + "\n" + csv_row(ok_result()) + "\n");
  EXPECT_EQ(read_text(scratch / "report.jsonl"), jsonl_row(ok_result()) + "\n" + jsonl_row(failed_result()) + "\n");
  for (const char* bad : {"report.txt", "report", "report.json"}) {
    try {
      ReportWriter writer(scratch / bad);
      ADD_FAILURE() << bad;
    } catch (const Error& error) {
      EXPECT_EQ(error.code(), ErrorCode::invalid_argument);
      EXPECT_THAT(error.what(), HasSubstr(".jsonl or .csv"));
    }
  }
  try {
    ReportWriter writer(scratch / "missing-folder" / "report.csv");
    ADD_FAILURE();
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::io_open);
  }
}

TEST(Summary, ExitCodes) {
  Summary summary;
  summary.counts[static_cast<std::size_t>(Status::ok)] = 3;
  summary.counts[static_cast<std::size_t>(Status::skipped)] = 1;
  summary.counts[static_cast<std::size_t>(Status::discarded)] = 1;
  summary.counts[static_cast<std::size_t>(Status::exists)] = 1;
  EXPECT_EQ(exit_code(summary), 0);
  summary.counts[static_cast<std::size_t>(Status::failed)] = 1;
  EXPECT_EQ(exit_code(summary), 1);
  summary.signal = SIGINT;
  EXPECT_EQ(exit_code(summary), 130);
  summary.signal = SIGTERM;
  EXPECT_EQ(exit_code(summary), 143);
}

TEST(Summary, Table) {
  Summary summary;
  summary.total = 5;
  summary.counts[static_cast<std::size_t>(Status::ok)] = 2;
  summary.counts[static_cast<std::size_t>(Status::failed)] = 3;
  summary.bytes_in = 300'000'000;
  summary.bytes_out = 100'000'000;
  summary.seconds = 75.2;
  ScratchFolder scratch;
  std::FILE* file = std::fopen((scratch / "summary.txt").c_str(), "w");
  ASSERT_NE(file, nullptr);
  print_summary(file, summary);
  std::fclose(file);
  EXPECT_EQ(read_text(scratch / "summary.txt"),
            "\n"
            "status         files\n"
            "ok                 2\n"
            "exists             0\n"
            "skipped            0\n"
            "discarded          0\n"
            "failed             3\n"
            "total              5\n"
            "resized     300.0 MB → 100.0 MB, saved 200.0 MB (66.7%)\n"
            "time        1 min 15 s\n");
}

TEST(Formatting, Durations) {
  EXPECT_EQ(format_duration(12.34), "12.3 s");
  EXPECT_EQ(format_duration(245), "4 min 05 s");
  EXPECT_EQ(format_duration(7620), "2 h 07 min");
  EXPECT_EQ(format_duration(std::numeric_limits<double>::infinity()), "?");
}

}  // namespace
}  // namespace lorakit::batch
