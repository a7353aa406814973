// The HTML pages as text: every section and plot present, names from the file escaped, nothing loaded
// from elsewhere, links percent-encoded, and pages written atomically without replacing their input.
// (tests/html/test_html.py renders them in Chromium.)
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <regex>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "lorakit/analysis.hpp"
#include "lorakit/error.hpp"

namespace lorakit {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kHostile = "lora_unet_<script>alert(\"x\")</script>&'";

Analysis sample_analysis() {
  Analysis a;
  a.inspection.file = "my <lora>.safetensors";
  a.inspection.file_size = 1'000'000;
  a.inspection.module_count = 2;
  a.inspection.families = {"kohya"};
  for (int i = 0; i <= 20; ++i) {
    a.mean_curve.push_back({static_cast<std::uint64_t>(i * 50'000), 0.5 + 0.025 * i});
    a.energy_curve.push_back({static_cast<std::uint64_t>(i * 50'000), 0.6 + 0.02 * i});
  }
  a.presets = {{"high", "--preset high", 400'000, 0.95, 0.97}, {"med", "--preset med", 300'000, 0.92, 0.95}};
  a.sv_fro = {{"sv_fro 0.90", "--method sv_fro --param 0.90", 250'000, 0.9, std::nan("")}};
  a.targets = {{"target 25%", "--target-ratio 0.25", 250'000, 0.93, 0.96}};
  ModuleAnalysis hostile;
  hostile.stem = kHostile;
  hostile.kind = "lora";
  hostile.weight_shape = {320, 768};
  hostile.rank = 16;
  hostile.bytes = 35'000;
  hostile.energy_share = 0.25;
  hostile.ranks_needed[1] = 2;
  hostile.dead = true;
  ModuleAnalysis plain = hostile;
  plain.stem = "lora_unet_mid_block_attentions_0_proj_in";
  plain.dead = false;
  plain.energy_share = std::nan("");
  a.modules = {hostile, plain};
  a.dead_bytes = 35'000;
  a.dead_share = 0.035;
  a.heat_maps.push_back({"UNet", {"down 1", "mid"}, {"attn1_to_q", "<b>"}, {{4.0, std::nullopt}, {std::nullopt, 9.5}},
                         {{1, 0}, {0, 1}}});
  a.notes = {"a note with <angle> brackets"};
  return a;
}

int count(const std::string& text, const std::string& what) {
  int n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
  return n;
}

TEST(AnalysisHtml, HoldsEveryPlotAndSection) {
  const std::string page = analysis_html(sample_analysis());
  for (const char* id : {"id=\"plot-mean\"", "id=\"plot-energy\"", "id=\"heat-0\"", "id=\"points\"", "id=\"modules\"",
                         "id=\"dead-weight\""}) {
    EXPECT_THAT(page, HasSubstr(id));
  }
  EXPECT_EQ(count(page, "<polyline class=\"curve mean\""), 1);
  EXPECT_EQ(count(page, "<polyline class=\"curve energy\""), 1);
  // Each curve point drawn; presets labelled on both charts; two heat cells (the empty ones are not drawn).
  const std::smatch points = [&] {
    std::smatch m;
    std::regex_search(page, m, std::regex("class=\"curve mean\" points=\"([^\"]*)\""));
    return m;
  }();
  ASSERT_FALSE(points.empty());
  EXPECT_EQ(count(points[1].str(), ","), 21);
  EXPECT_EQ(count(page, "<circle class=\"preset\""), 4);
  EXPECT_EQ(count(page, "<rect class=\"cell\""), 2);
  EXPECT_THAT(page, HasSubstr("@media (prefers-color-scheme: dark)"));
  EXPECT_THAT(page, HasSubstr("--target-ratio 0.25"));
}

TEST(AnalysisHtml, EscapesNamesAndLoadsNothing) {
  const std::string page = analysis_html(sample_analysis());
  EXPECT_THAT(page, Not(HasSubstr("<script")));
  EXPECT_THAT(page, Not(HasSubstr("<lora>")));
  EXPECT_THAT(page, Not(HasSubstr("<b>")));
  EXPECT_THAT(page, Not(HasSubstr("<angle>")));
  EXPECT_THAT(page, HasSubstr("lora_unet_&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;"));
  EXPECT_THAT(page, HasSubstr("a note with &lt;angle&gt; brackets"));
  for (const char* external : {"http:", "https:", "src=", "<link", "@import", "url("}) {
    EXPECT_THAT(page, Not(HasSubstr(external))) << external;
  }
}

TEST(AnalysisHtml, UnknownValuesReadNa) {
  const std::string page = analysis_html(sample_analysis());
  EXPECT_THAT(page, HasSubstr("n/a"));
  EXPECT_THAT(page, Not(HasSubstr("nan")));
}

TEST(OverviewHtml, LinksArePercentEncodedAndEachRowHasItsCurve) {
  const Analysis a = sample_analysis();
  std::vector<OverviewRow> rows(3);
  rows[0] = {"sub/a b#c%.safetensors", "ok", "", 1'000'000, 400'000, 0.95, "o_files/sub/a b#c%.safetensors.html",
             a.mean_curve};
  rows[1] = {"broken <x>.safetensors", "failed", "truncated <header>", 10, std::nullopt, std::nullopt, "", {}};
  rows[2] = {"small.safetensors", "discarded", "below --min-retention", 1'000'000, 100'000, 0.6, "o_files/s.html",
             a.mean_curve};
  const std::string page = overview_html("lorakit batch", rows);
  EXPECT_THAT(page, HasSubstr("<a href=\"o_files/sub/a%20b%23c%25.safetensors.html\">sub/a b#c%.safetensors</a>"));
  EXPECT_THAT(page, HasSubstr("broken &lt;x&gt;.safetensors"));
  EXPECT_THAT(page, HasSubstr("truncated &lt;header&gt;"));
  EXPECT_EQ(count(page, "<a href="), 2);
  EXPECT_THAT(page, HasSubstr("id=\"spark-0\""));
  EXPECT_THAT(page, Not(HasSubstr("id=\"spark-1\"")));  // a file without an analysis has no curve
  EXPECT_THAT(page, HasSubstr("id=\"spark-2\""));
  EXPECT_EQ(count(page, "<circle class=\"preset\""), 2);  // each written result on its curve
  EXPECT_THAT(page, HasSubstr("3 files; 1 resized: 1.0 MB → 400.0 kB"));
}

std::string read(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

class WritePage : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("lorakit-html-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
                                        "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::size_t entries() const { return static_cast<std::size_t>(std::distance(fs::directory_iterator(dir_), {})); }
  fs::path dir_;
};

ErrorCode code_of(const std::function<void()>& body) {
  try {
    body();
  } catch (const Error& e) {
    return e.code();
  }
  return ErrorCode::internal;
}

TEST_F(WritePage, RefusesAnExistingPageUnlessOverwriting) {
  const fs::path page = dir_ / "report.html";
  write_page(page, "one", false);
  EXPECT_EQ(code_of([&] { write_page(page, "two", false); }), ErrorCode::output_exists);
  EXPECT_EQ(read(page), "one");
  write_page(page, "three", true);
  EXPECT_EQ(read(page), "three");
  EXPECT_EQ(entries(), 1U);  // no temp file left
}

TEST_F(WritePage, NeverReplacesTheFileItIsAbout) {
  const fs::path input = dir_ / "lora.safetensors";
  std::ofstream(input) << "weights";
  EXPECT_EQ(code_of([&] { write_page(input, "page", true, input); }), ErrorCode::same_file);
  EXPECT_EQ(code_of([&] { write_page(dir_ / "." / "lora.safetensors", "page", true, input); }), ErrorCode::same_file);
  EXPECT_EQ(read(input), "weights");
  EXPECT_EQ(entries(), 1U);
}

}  // namespace
}  // namespace lorakit
