// choose_rank against FORMATS.md §4, every expected k derived by hand in the comments.
// Notation: n = full_dim, r = current_rank, N = rule.cap (default r), clamp(x) = max(1, min(x, n − 1)).
#include <gtest/gtest.h>

#include <limits>
#include <vector>

#include "lorakit/error.hpp"
#include "lorakit/rank_policy.hpp"

namespace lorakit {
namespace {

std::size_t choose(const std::vector<double>& sigma, std::size_t n, std::size_t r, RankMethod method,
                   double p, std::optional<std::size_t> cap = std::nullopt, bool minimal = false) {
  return choose_rank(sigma, n, r, RankRule{method, p, cap, minimal});
}

// ---- names ---------------------------------------------------------------------------------------

TEST(RankMethodNames, RoundTrip) {
  for (const RankMethod method : {RankMethod::fixed, RankMethod::sv_ratio, RankMethod::sv_fro,
                                  RankMethod::sv_cumulative, RankMethod::sv_knee}) {
    EXPECT_EQ(parse_rank_method(rank_method_name(method)), method);
  }
  EXPECT_EQ(rank_method_name(RankMethod::sv_cumulative), "sv_cumulative");
  EXPECT_EQ(parse_rank_method("fixed"), RankMethod::fixed);
  EXPECT_EQ(parse_rank_method("sv_fro"), RankMethod::sv_fro);
  EXPECT_EQ(parse_rank_method("sv_ratio"), RankMethod::sv_ratio);
  EXPECT_EQ(parse_rank_method("sv_knee"), RankMethod::sv_knee);
  EXPECT_FALSE(takes_param(RankMethod::sv_knee));
  EXPECT_FALSE(takes_param(RankMethod::fixed));
  EXPECT_TRUE(takes_param(RankMethod::sv_fro));
}

TEST(RankMethodNames, UnknownNamesAreRejected) {
  EXPECT_EQ(parse_rank_method(""), std::nullopt);
  EXPECT_EQ(parse_rank_method("SV_RATIO"), std::nullopt);
  EXPECT_EQ(parse_rank_method("sv-ratio"), std::nullopt);
  EXPECT_EQ(parse_rank_method("sv_ratio "), std::nullopt);
}

// ---- fixed ---------------------------------------------------------------------------------------

TEST(ChooseRankFixed, IsTheCapOrTheModuleRank) {
  const std::vector<double> sigma{5, 4, 3, 2, 1};
  EXPECT_EQ(choose(sigma, 10, 8, RankMethod::fixed, 0, 4), 4u);             // k = N = 4
  EXPECT_EQ(choose(sigma, 10, 8, RankMethod::fixed, 0), 8u);                // no N: N = r = 8
  EXPECT_EQ(choose(sigma, 10, 8, RankMethod::fixed, 0, 16), 16u);           // N > r: returned, "unchanged"
  EXPECT_EQ(choose(sigma, 10, 8, RankMethod::fixed, 0, 12), 12u);           // N > n as well
  EXPECT_EQ(choose(sigma, 10, 8, RankMethod::fixed, 0, 4, true), 4u);       // minimal does not apply
}

TEST(ChooseRankFixed, ZeroAndTinyModulesGetOne) {
  EXPECT_EQ(choose({}, 10, 8, RankMethod::fixed, 0, 4), 1u);                // no σ at all
  EXPECT_EQ(choose({1e-6, 5e-7}, 10, 8, RankMethod::fixed, 0, 4), 1u);      // σ₁ ≤ 1e-6 (inclusive)
  EXPECT_EQ(choose({1.0000001e-6}, 10, 8, RankMethod::fixed, 0, 4), 4u);    // σ₁ > 1e-6: the rule
}

// ---- sv_ratio: c = #{σᵢ > σ₁/p}, k = clamp(c) + 1 -------------------------------------------------

TEST(ChooseRankSvRatio, Table) {
  const std::vector<double> sigma{10, 5, 2, 1, 0.5};  // n = 64, r = 8
  // p = 1:   σ₁/p = 10,  none > 10 → c = 0 → clamp(0) = 1 → k = 2
  EXPECT_EQ(choose(sigma, 64, 8, RankMethod::sv_ratio, 1), 2u);
  // p = 2:   σ₁/p = 5,   {10} (5 is not > 5) → c = 1 → k = 2
  EXPECT_EQ(choose(sigma, 64, 8, RankMethod::sv_ratio, 2), 2u);
  // p = 4:   σ₁/p = 2.5, {10, 5} → c = 2 → k = 3
  EXPECT_EQ(choose(sigma, 64, 8, RankMethod::sv_ratio, 4), 3u);
  // p = 10:  σ₁/p = 1,   {10, 5, 2} → c = 3 → k = 4
  EXPECT_EQ(choose(sigma, 64, 8, RankMethod::sv_ratio, 10), 4u);
  // p = 25:  σ₁/p = 0.4, all five → c = 5 → k = 6
  EXPECT_EQ(choose(sigma, 64, 8, RankMethod::sv_ratio, 25), 6u);
  // p = 1e12: the n − 5 missing σ are zeros and never exceed σ₁/p > 0 → c = 5 → k = 6
  EXPECT_EQ(choose(sigma, 64, 8, RankMethod::sv_ratio, 1e12), 6u);
}

TEST(ChooseRankSvRatio, MinimalDropsThePlusOne) {
  const std::vector<double> sigma{10, 5, 2, 1, 0.5};
  EXPECT_EQ(choose(sigma, 64, 8, RankMethod::sv_ratio, 1, std::nullopt, true), 1u);   // c = 0 → max(1, 0)
  EXPECT_EQ(choose(sigma, 64, 8, RankMethod::sv_ratio, 2, std::nullopt, true), 1u);   // c = 1
  EXPECT_EQ(choose(sigma, 64, 8, RankMethod::sv_ratio, 4, std::nullopt, true), 2u);   // c = 2
  EXPECT_EQ(choose(sigma, 64, 8, RankMethod::sv_ratio, 25, std::nullopt, true), 5u);  // c = 5
}

// ---- sv_cumulative: j* = first j with Σ_{i≤j}σᵢ ≥ p·Σσ, k = clamp(j* + 1) + 1 ------------------------

TEST(ChooseRankSvCumulative, Table) {
  // σ = (4, 2, 1, 1), Σ = 8: C = (0.5, 0.75, 0.875, 1). n = 32, r = 8 (a rank-deficient module: ρ = 4).
  const std::vector<double> sigma{4, 2, 1, 1};
  EXPECT_EQ(choose(sigma, 32, 8, RankMethod::sv_cumulative, 0.5), 2u);    // C₀ = 0.5 ≥ 0.5: j* = 0 → 1 + 1
  EXPECT_EQ(choose(sigma, 32, 8, RankMethod::sv_cumulative, 0.6), 3u);    // j* = 1 → clamp(2) + 1
  EXPECT_EQ(choose(sigma, 32, 8, RankMethod::sv_cumulative, 0.75), 3u);   // C₁ = 0.75 exactly: j* = 1
  EXPECT_EQ(choose(sigma, 32, 8, RankMethod::sv_cumulative, 0.8), 4u);    // j* = 2 → 3 + 1
  EXPECT_EQ(choose(sigma, 32, 8, RankMethod::sv_cumulative, 0.9), 5u);    // C₂ = 0.875 < 0.9: j* = 3 → 4 + 1
  EXPECT_EQ(choose(sigma, 32, 8, RankMethod::sv_cumulative, 1.0), 5u);    // reached at the last nonzero σ
  // p > 1 is never reached: j* = n = 32 → clamp(33) = 31 → 32 → capped at N = r = 8
  EXPECT_EQ(choose(sigma, 32, 8, RankMethod::sv_cumulative, 1.5), 8u);
}

TEST(ChooseRankSvCumulative, MinimalIsTheSmallestRankMeetingTheTarget) {
  const std::vector<double> sigma{4, 2, 1, 1};
  EXPECT_EQ(choose(sigma, 32, 8, RankMethod::sv_cumulative, 0.5, std::nullopt, true), 1u);  // j* + 1 = 1
  EXPECT_EQ(choose(sigma, 32, 8, RankMethod::sv_cumulative, 0.6, std::nullopt, true), 2u);
  EXPECT_EQ(choose(sigma, 32, 8, RankMethod::sv_cumulative, 0.9, std::nullopt, true), 4u);
  EXPECT_EQ(choose(sigma, 32, 8, RankMethod::sv_cumulative, 1.0, std::nullopt, true), 4u);  // all nonzero σ
  EXPECT_EQ(choose(sigma, 32, 8, RankMethod::sv_cumulative, 1.5, std::nullopt, true), 8u);  // none: n, capped
}

TEST(ChooseRankSvCumulative, FullTargetIsReachedWhenTheForwardSumRoundsBelowTheTotal) {
  // In double, 0.7 + 0.2 + 0.1 = 0.9999999999999999 while 0.1 + 0.2 + 0.7 = 1.0: a "cumsum / sum ≥ 1" test
  // never fires (j* = n → k = n, capped at N = 8). Exactly, C₂ = 1: j* = 2 → clamp(3) + 1 = 4.
  EXPECT_EQ(choose({0.7, 0.2, 0.1}, 16, 8, RankMethod::sv_cumulative, 1.0), 4u);
  EXPECT_EQ(choose({0.6, 0.3, 0.1}, 16, 8, RankMethod::sv_cumulative, 1.0), 4u);  // same effect
}

TEST(ChooseRankSvCumulative, FullTargetWaitsForATailBelowRounding) {
  // σ = (1, 1e-17): 1 + 1e-17 = 1 in double, so C₀ would round to 1; exactly C₀ < 1, so j* = 1 → 2 + 1.
  EXPECT_EQ(choose({1.0, 1e-17}, 16, 8, RankMethod::sv_cumulative, 1.0), 3u);
}

// ---- sv_fro: j* = first j with Σ_{i≤j}σᵢ² ≥ p²·Σσ², k = clamp(j* + 1) + 1 ------------------------------

TEST(ChooseRankSvFro, Table) {
  // σ = (3, 2, 1, 1): σ² = (9, 4, 1, 1), Σ = 15: F = (0.6, 0.8667, 0.9333, 1). n = 32, r = 8.
  const std::vector<double> sigma{3, 2, 1, 1};
  EXPECT_EQ(choose(sigma, 32, 8, RankMethod::sv_fro, 0.7), 2u);    // p² = 0.49 ≤ 0.6: j* = 0 → 1 + 1
  EXPECT_EQ(choose(sigma, 32, 8, RankMethod::sv_fro, 0.9), 3u);    // p² = 0.81: j* = 1 → 2 + 1
  EXPECT_EQ(choose(sigma, 32, 8, RankMethod::sv_fro, 0.95), 4u);   // p² = 0.9025: j* = 2 → 3 + 1
  EXPECT_EQ(choose(sigma, 32, 8, RankMethod::sv_fro, 0.99), 5u);   // p² = 0.9801 > 0.9333: j* = 3 → 4 + 1
  EXPECT_EQ(choose(sigma, 32, 8, RankMethod::sv_fro, 1.0), 5u);    // j* = 3: the last nonzero σ
  EXPECT_EQ(choose(sigma, 32, 8, RankMethod::sv_fro, 0.9, std::nullopt, true), 2u);   // minimal: j* + 1
  EXPECT_EQ(choose(sigma, 32, 8, RankMethod::sv_fro, 1.0, std::nullopt, true), 4u);
}

TEST(ChooseRankSvFro, FullTargetIsReachedOnlyAtTheLastNonzeroValue) {
  // σ = (1, 1e-9): σ² = (1, 1e-18) and 1 + 1e-18 = 1 in double, so F₀ = 1/1 would meet p = 1 at j = 0.
  // Exactly F₀ < 1: j* = 1 → clamp(2) + 1 = 3 (n = 16, N = r = 8); minimal: 2.
  EXPECT_EQ(choose({1.0, 1e-9}, 16, 8, RankMethod::sv_fro, 1.0), 3u);
  EXPECT_EQ(choose({1.0, 1e-9}, 16, 8, RankMethod::sv_fro, 1.0, std::nullopt, true), 2u);
  // Just below 1 the tiny tail is within the allowance: 1 − p² = 0.0199 ≥ 1e-18 → j* = 0 → 2.
  EXPECT_EQ(choose({1.0, 1e-9}, 16, 8, RankMethod::sv_fro, 0.99), 2u);
}

// ---- MIN_SV, caps and clamps -----------------------------------------------------------------------

// ---- sv_knee: k = #{i : r·σᵢ² ≥ Σσ²} ---------------------------------------------------------------

TEST(ChooseRankSvKnee, CountsTheValuesAboveTheMeanEnergyOverTheRank) {
  // σ² = 64, 16, 4, 1 (Σ = 85), r = 8: Σ/r = 10.625 → 64 and 16 count → k = 2
  EXPECT_EQ(choose({8, 4, 2, 1}, 64, 8, RankMethod::sv_knee, 0), 2u);
  // r = 4: Σ/r = 21.25 → only 64 → k = 1
  EXPECT_EQ(choose({8, 4, 2, 1}, 64, 4, RankMethod::sv_knee, 0), 1u);
  // A flat spectrum has no knee: every value is the mean, all are kept (k = r → unchanged)
  EXPECT_EQ(choose({3, 3, 3, 3}, 64, 4, RankMethod::sv_knee, 0), 4u);
  // Missing values count as zeros on the chord: σ² = 9, 9 with r = 4: Σ/r = 4.5 → k = 2
  EXPECT_EQ(choose({3, 3}, 64, 4, RankMethod::sv_knee, 0), 2u);
}

// The knee is the point of the cumulative energy curve F(k) = Σ_{i≤k}σᵢ²/Σσ² farthest above the chord k/r.
TEST(ChooseRankSvKnee, IsThePointFarthestAboveTheChord) {
  const std::vector<double> sigma{9.0, 7.5, 4.0, 3.9, 1.2, 0.8, 0.3, 0.1};
  const std::size_t r = sigma.size();
  double total = 0.0;
  for (double s : sigma) total += s * s;
  double best = 0.0, cumulative = 0.0;
  std::size_t farthest = 0;
  for (std::size_t k = 1; k <= r; ++k) {
    cumulative += sigma[k - 1] * sigma[k - 1];
    const double above = cumulative / total - static_cast<double>(k) / static_cast<double>(r);
    if (above > best) {
      best = above;
      farthest = k;
    }
  }
  EXPECT_EQ(choose(sigma, 64, r, RankMethod::sv_knee, 0), farthest);
}

TEST(ChooseRank, FloorRaisesTheRankButNotAboveTheCap) {
  const std::vector<double> sigma{8, 4, 2, 1};
  RankRule rule{RankMethod::sv_knee, 0.0, std::nullopt, false, 3};
  EXPECT_EQ(choose_rank(sigma, 64, 8, rule), 3u);  // knee 2, floor 3
  rule.cap = 2;
  EXPECT_EQ(choose_rank(sigma, 64, 8, rule), 2u);  // the cap wins
  rule = {RankMethod::fixed, 0.0, 4, false, 6};
  EXPECT_EQ(choose_rank(sigma, 64, 8, rule), 4u);
}

TEST(ChooseRank, ZeroModuleGetsOneWhateverTheMethod) {
  for (const RankMethod method : {RankMethod::sv_ratio, RankMethod::sv_fro, RankMethod::sv_cumulative}) {
    EXPECT_EQ(choose({}, 32, 8, method, 0.9), 1u);
    EXPECT_EQ(choose({}, 32, 8, method, 0.9, std::nullopt, true), 1u);
  }
}

TEST(ChooseRank, TinyModuleGetsOne) {
  // σ₁ = 1e-6 ≤ kMinSingularValue: 1, although sv_ratio p = 2 alone would give clamp(1) + 1 = 2.
  EXPECT_EQ(choose({1e-6, 9e-7, 1e-7}, 32, 8, RankMethod::sv_ratio, 2), 1u);
  EXPECT_EQ(choose({1e-7}, 32, 8, RankMethod::sv_fro, 1.0), 1u);
  // σ₁ just above: the rule. σ₁/2 = 5.0000005e-7, only σ₁ exceeds it → c = 1 → 2.
  EXPECT_EQ(choose({1.000001e-6, 5e-7}, 32, 8, RankMethod::sv_ratio, 2), 2u);
}

TEST(ChooseRank, PlusOneIsCappedAtTheModuleRank) {
  // ρ = r = 4: sv_cumulative p = 1 → j* = 3 → clamp(4) + 1 = 5 = r + 1 → N = r = 4.
  EXPECT_EQ(choose({4, 2, 1, 1}, 32, 4, RankMethod::sv_cumulative, 1.0), 4u);
  EXPECT_EQ(choose({4, 2, 1, 1}, 32, 4, RankMethod::sv_cumulative, 1.0, std::nullopt, true), 4u);
  // An explicit cap below the rule: min(5, 2) = 2.
  EXPECT_EQ(choose({4, 2, 1, 1}, 32, 4, RankMethod::sv_cumulative, 1.0, 2), 2u);
}

TEST(ChooseRank, CapAboveTheModuleRankAndTheFullDimension) {
  // n = 4, r = 4, N = 10: sv_cumulative p = 1 → j* = 3 → clamp(4) = min(4, 3) = 3 → k = 4 ≤ N.
  EXPECT_EQ(choose({4, 2, 1, 1}, 4, 4, RankMethod::sv_cumulative, 1.0, 10), 4u);
  // sv_ratio with N > r: p = 100 → c = 4 → clamp(4) = 3 → 4.
  EXPECT_EQ(choose({4, 2, 1, 1}, 4, 4, RankMethod::sv_ratio, 100, 10), 4u);
}

TEST(ChooseRank, ClampAtFullDimensionMinusOne) {
  // n = 2: σ = (2, 1), sv_fro p = 1 → j* = 1 → clamp(2) = min(2, 1) = 1 → k = 2 (N = r = 2).
  EXPECT_EQ(choose({2, 1}, 2, 2, RankMethod::sv_fro, 1.0), 2u);
  // n = 3: σ = (3, 2, 1), sv_ratio p = 100 → c = 3 → clamp(3) = 2 → k = 3 (N = r = 3).
  EXPECT_EQ(choose({3, 2, 1}, 3, 3, RankMethod::sv_ratio, 100), 3u);
  // n = 1: clamp(x) = max(1, min(x, 0)) = 1 → k = 2; N = r = 1 → 1; N = 4 → 2.
  EXPECT_EQ(choose({5}, 1, 1, RankMethod::sv_ratio, 10), 1u);
  EXPECT_EQ(choose({5}, 1, 1, RankMethod::sv_ratio, 10, 4), 2u);
  // n large, p > 1: j* = n = 6 → clamp(7) = 5 → 6, within N = 8.
  EXPECT_EQ(choose({4, 2, 1, 1}, 6, 8, RankMethod::sv_fro, 2.0), 6u);
}

TEST(ChooseRank, ModuleWithoutRankStillGetsOne) {  // r = 0 and no cap: k ≥ 1 always
  EXPECT_EQ(choose({}, 8, 0, RankMethod::fixed, 0), 1u);
}

// ---- invalid input -------------------------------------------------------------------------------

void expect_invalid(const std::vector<double>& sigma, std::size_t n, const RankRule& rule) {
  try {
    choose_rank(sigma, n, 4, rule);
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::invalid_argument);
  }
}

TEST(ChooseRank, InvalidArgumentsAreRejected) {
  expect_invalid({2, 1}, 8, RankRule{RankMethod::fixed, 0, 0, false});  // cap 0
  for (const double p : {0.0, -1.0, std::numeric_limits<double>::quiet_NaN(),
                         std::numeric_limits<double>::infinity()}) {
    expect_invalid({2, 1}, 8, RankRule{RankMethod::sv_ratio, p, std::nullopt, false});
  }
  expect_invalid({1, 2}, 8, RankRule{RankMethod::sv_fro, 0.9, std::nullopt, false});      // ascending
  expect_invalid({2, -1}, 8, RankRule{RankMethod::sv_fro, 0.9, std::nullopt, false});     // negative
  expect_invalid({3, 2, 1}, 2, RankRule{RankMethod::sv_fro, 0.9, std::nullopt, false});   // more σ than n
  try {
    const RankRule rule{RankMethod::sv_cumulative, -0.5, std::nullopt, false};
    choose_rank(std::vector<double>{2, 1}, 8, 4, rule);
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_STREQ(error.what(), "sv_cumulative parameter must be a finite number > 0, got -0.5");
  }
}

}  // namespace
}  // namespace lorakit
