// Presets: what "high / med / low" mean, for `resize` and `batch` alike.
#include <optional>
#include <string>

#include <gtest/gtest.h>

#include "lorakit/rank_policy.hpp"

namespace lorakit {
namespace {

TEST(Presets, MapToSvFroWithTheDocumentedTargets) {
  EXPECT_EQ(parse_preset("high"), Preset::high);
  EXPECT_EQ(parse_preset("med"), Preset::med);
  EXPECT_EQ(parse_preset("low"), Preset::low);
  EXPECT_EQ(parse_preset("medium"), std::nullopt);
  EXPECT_EQ(preset_name(Preset::med), "med");
  EXPECT_EQ(preset_sv_fro(Preset::high), 0.95);
  EXPECT_EQ(preset_sv_fro(Preset::med), 0.92);
  EXPECT_EQ(preset_sv_fro(Preset::low), 0.88);
}

TEST(Presets, ExplicitMethodOrParamOverride) {
  std::string method;
  std::optional<double> param;
  apply_preset(Preset::med, method, param);
  EXPECT_EQ(method, "sv_fro");
  EXPECT_EQ(param, 0.92);

  method.clear();
  param = 0.9;  // --preset low --param 0.9
  apply_preset(Preset::low, method, param);
  EXPECT_EQ(method, "sv_fro");
  EXPECT_EQ(param, 0.9);

  method = "sv_fro";
  param.reset();
  apply_preset(Preset::high, method, param);
  EXPECT_EQ(param, 0.95);

  method = "fixed";  // --preset high --method fixed --rank 8: the preset gives nothing
  param.reset();
  apply_preset(Preset::high, method, param);
  EXPECT_EQ(method, "fixed");
  EXPECT_EQ(param, std::nullopt);

  method = "sv_ratio";  // another method keeps its own parameter (or its missing-parameter error)
  apply_preset(Preset::high, method, param);
  EXPECT_EQ(method, "sv_ratio");
  EXPECT_EQ(param, std::nullopt);
}

}  // namespace
}  // namespace lorakit
