#pragma once
// Checks shared by the end-to-end tests: a resized file re-read by the independent loader evaluator.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include "loader_eval.hpp"
#include "lorakit/report.hpp"
#include "lorakit/resize.hpp"
#include "lorakit/safetensors.hpp"
#include "reference_rules.hpp"

namespace lorakit::e2e {

// For every module of `input` (resized into `output`, with sv_fro `p` when given): modules that were not
// resized have an unchanged loader ΔW, dropped ones none; with `p`, chosen ranks follow the reference rule
// on a dense SVD of ΔW (modules kept in their LyCORIS form excepted); the loader ΔW moves by √(1 − fro²)
// of the report within `tolerance`; an all-zero module stays zero. Returns how many modules were resized.
// The options say how the evaluator reads each file (a PEFT adapter's adapter_config.json, for one).
inline std::size_t expect_deltas_match_report(const std::filesystem::path& input,
                                              const std::filesystem::path& output, const ResizeReport& report,
                                              std::optional<double> p, double tolerance,
                                              const testsupport::EvalOptions& input_options = {},
                                              const testsupport::EvalOptions& output_options = {}) {
  const auto before = testsupport::loader_modules(input, input_options);
  const auto after = testsupport::loader_deltas(output, output_options);
  EXPECT_EQ(before.size(), report.modules.size());
  std::map<std::string, const ModuleReport*> by_stem;
  for (const ModuleReport& m : report.modules) by_stem[m.stem] = &m;
  std::size_t resized = 0;
  for (const auto& module : before) {
    SCOPED_TRACE(module.stem);
    // The evaluator keeps legacy diffusers' "_lora" in the stem (`…to_q_lora.down.weight`); lorakit
    // names the module by the layer it patches (`…to_q`).
    std::string stem = module.stem;
    if (!by_stem.count(stem) && stem.ends_with("_lora")) stem.resize(stem.size() - 5);
    if (!by_stem.count(stem)) {
      ADD_FAILURE() << "module missing from the report";
      continue;
    }
    const ModuleReport& m = *by_stem.at(stem);
    if (m.outcome == ModuleOutcome::dropped) {
      EXPECT_EQ(after.count(module.stem), 0u) << "a dropped module is in the output";
      continue;
    }
    if (!after.count(module.stem)) {
      ADD_FAILURE() << "module missing from the output";
      continue;
    }
    const Eigen::MatrixXd& delta_after = after.at(module.stem);
    if (p && m.outcome != ModuleOutcome::kept) {
      const Eigen::VectorXd sigma = testsupport::singular_values(module.delta / module.scale);
      EXPECT_EQ(m.new_rank, testsupport::reference_sv_fro_rank(sigma, *p, m.old_rank));
    }
    const double error = testsupport::relative_error(module.delta, delta_after);
    if (m.outcome != ModuleOutcome::resized) {
      EXPECT_LT(error, 1e-12) << module_outcome_name(m.outcome);
      continue;
    }
    ++resized;
    if (std::isnan(m.fro_retained)) {
      EXPECT_EQ(delta_after.norm(), 0.0);
      continue;
    }
    const double expected = std::sqrt(std::max(0.0, 1.0 - m.fro_retained * m.fro_retained));
    EXPECT_NEAR(error, expected, tolerance) << "rank " << m.old_rank << " -> " << m.new_rank;
  }
  return resized;
}

// Every tensor the report lists as passed through is in the output with the same dtype, shape and bytes.
inline void expect_passthrough_identical(const std::filesystem::path& input, const std::filesystem::path& output,
                                         const ResizeReport& report) {
  const Reader in(input), out(output);
  for (const std::string& name : report.passthrough) {
    SCOPED_TRACE(name);
    const TensorInfo* a = in.header().find(name);
    const TensorInfo* b = out.header().find(name);
    ASSERT_TRUE(a != nullptr && b != nullptr);
    EXPECT_EQ(a->dtype, b->dtype);
    EXPECT_EQ(a->shape, b->shape);
    EXPECT_TRUE(in.read(*a) == out.read(*b));
  }
}

}  // namespace lorakit::e2e
