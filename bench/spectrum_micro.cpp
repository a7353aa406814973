// spectrum_micro: Google Benchmark micro-benchmarks of the factored SVD at the shapes real LoRAs have,
// and of its steps, re-created here with the same Eigen calls as src/spectrum/factored_svd.cpp (the
// steps are internal), so a profile can be read as "which step costs what at which shape":
//   Gram (BᵀB by rankUpdate), Cholesky (R×R), symmetric eigen (R×R; the Cholesky route's one
//   decomposition), core SVD (BDCSVD R×R; the Gram and QR routes), apply (the two GEMMs that produce
//   the new factors), the QR route's Householder QR, finiteness checks, fp16/bf16 decode/encode.
// Run: BUILD/bench/spectrum_micro [--benchmark_filter=REGEX] [--benchmark_min_time=0.1]
// Shapes (m × n, inner R) — m = out, n = in·kh·kw:
//   21504×3072   Flux single-block linear1        3072×3072    Flux attention proj / SD3
//   1280×11520   SDXL/SD1.5 3×3 conv (1280 ch)    320×2880     SD1.5 3×3 conv (320 ch)
//   320×320      SD1.5 attention                  768×768      CLIP-L text encoder
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <Eigen/Cholesky>
#include <Eigen/Eigenvalues>
#include <Eigen/QR>
#include <Eigen/SVD>
#include <benchmark/benchmark.h>

#include "gen_random.hpp"
#include "lorakit/dtype.hpp"
#include "lorakit/spectrum.hpp"

namespace {

using lorakit::MatrixRM;

struct Factors {
  MatrixRM up;    // m × R
  MatrixRM down;  // R × n
};

// Gaussian factors whose product has a trained-like decaying spectrum: direction i carries
// ρᵢ = 0.999·exp(−i/τ) + 0.001 with τ = R/4, split as √ρᵢ between the factors.
Factors trained_like(Eigen::Index m, Eigen::Index n, Eigen::Index rank, std::uint64_t seed = 7) {
  lorakit::testsupport::Rng rng(seed);
  Factors f{MatrixRM(m, rank), MatrixRM(rank, n)};
  for (Eigen::Index i = 0; i < f.up.size(); ++i) f.up.data()[i] = 1e-3 * rng.normal();
  for (Eigen::Index i = 0; i < f.down.size(); ++i) f.down.data()[i] = 1e-2 * rng.normal();
  const double tau = std::max(1.0, static_cast<double>(rank) / 4.0);
  for (Eigen::Index i = 0; i < rank; ++i) {
    const double weight = std::sqrt(0.999 * std::exp(-static_cast<double>(i) / tau) + 0.001);
    f.up.col(i) *= weight;
    f.down.row(i) *= weight;
  }
  return f;
}

void shape_args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"m", "n", "R"});
  b->Args({21504, 3072, 128})->Args({21504, 3072, 32});
  b->Args({3072, 3072, 128})->Args({3072, 3072, 32});
  b->Args({1280, 11520, 128})->Args({1280, 11520, 32});
  b->Args({320, 2880, 128})->Args({320, 320, 128})->Args({768, 768, 128});
  b->Unit(benchmark::kMillisecond);
}

Eigen::Index arg(const benchmark::State& state, int i) { return static_cast<Eigen::Index>(state.range(i)); }

// The whole call: both Grams, the route's decompositions and the transforms.
void BM_FactoredSvd(benchmark::State& state) {
  const Factors f = trained_like(arg(state, 0), arg(state, 1), arg(state, 2));
  lorakit::SvdRoute route = lorakit::SvdRoute::cholesky;
  for (auto _ : state) {
    const lorakit::FactoredSvd svd = lorakit::factored_svd(f.up, f.down);
    route = svd.route;
    benchmark::DoNotOptimize(svd.sigma.data());
  }
  state.counters["route"] = static_cast<double>(route);  // 0 Cholesky, 1 Gram, 2 QR
}
BENCHMARK(BM_FactoredSvd)->Apply(shape_args);

// Both Grams, as factored_svd forms them (lower triangle by rankUpdate).
void BM_Grams(benchmark::State& state) {
  const Factors f = trained_like(arg(state, 0), arg(state, 1), arg(state, 2));
  const Eigen::Index rank = arg(state, 2);
  for (auto _ : state) {
    Eigen::MatrixXd gram_up = Eigen::MatrixXd::Zero(rank, rank);
    gram_up.selfadjointView<Eigen::Lower>().rankUpdate(f.up.transpose());
    Eigen::MatrixXd gram_down = Eigen::MatrixXd::Zero(rank, rank);
    gram_down.selfadjointView<Eigen::Lower>().rankUpdate(f.down);
    benchmark::DoNotOptimize(gram_up.data());
    benchmark::DoNotOptimize(gram_down.data());
  }
}
BENCHMARK(BM_Grams)->Apply(shape_args);

// The same Grams as plain GEMMs (BᵀB and AAᵀ in full), for comparison with rankUpdate.
void BM_GramsAsGemm(benchmark::State& state) {
  const Factors f = trained_like(arg(state, 0), arg(state, 1), arg(state, 2));
  for (auto _ : state) {
    const Eigen::MatrixXd gram_up = f.up.transpose() * f.up;
    const Eigen::MatrixXd gram_down = f.down * f.down.transpose();
    benchmark::DoNotOptimize(gram_up.data());
    benchmark::DoNotOptimize(gram_down.data());
  }
}
BENCHMARK(BM_GramsAsGemm)->Apply(shape_args);

// The two GEMMs that produce the new factors: up' = B·T_up (m×R·R×k), down' = T_down·A, at k = R/8
// (sv_fro 0.95 on the generated files keeps a median k of 12 of R = 128 and 7–8 of R = 32).
void BM_Apply(benchmark::State& state) {
  const Factors f = trained_like(arg(state, 0), arg(state, 1), arg(state, 2));
  const Eigen::Index rank = arg(state, 2), k = std::max<Eigen::Index>(1, rank / 8);
  const Eigen::MatrixXd up_transform = Eigen::MatrixXd::Random(rank, k);
  const Eigen::MatrixXd down_transform = Eigen::MatrixXd::Random(k, rank);
  MatrixRM new_up(f.up.rows(), k), new_down(k, f.down.cols());
  for (auto _ : state) {
    new_up.noalias() = f.up * up_transform;
    new_down.noalias() = down_transform * f.down;
    benchmark::DoNotOptimize(new_up.data());
    benchmark::DoNotOptimize(new_down.data());
  }
}
BENCHMARK(BM_Apply)->Apply(shape_args);

// The QR route's Householder QR of both factors (B and Aᵀ, column-major copies as factored_svd makes).
void BM_QrFactors(benchmark::State& state) {
  const Factors f = trained_like(arg(state, 0), arg(state, 1), arg(state, 2));
  for (auto _ : state) {
    Eigen::MatrixXd b = f.up;
    Eigen::MatrixXd a = f.down.transpose();
    Eigen::HouseholderQR<Eigen::Ref<Eigen::MatrixXd>> qr_b(b);
    Eigen::HouseholderQR<Eigen::Ref<Eigen::MatrixXd>> qr_a(a);
    benchmark::DoNotOptimize(qr_b.matrixQR().data());
    benchmark::DoNotOptimize(qr_a.matrixQR().data());
  }
}
BENCHMARK(BM_QrFactors)->Apply(shape_args);

// R×R steps (independent of m and n). factored_svd runs two symmetric eigen-decompositions with vectors
// and one core BDCSVD with thin U and V; the values-only and Cholesky variants show what a cheaper
// pass 1 (spectrum only) or a Cholesky root of the Gram would cost instead. Arg: R, and 1 = with vectors.
Eigen::MatrixXd small_gram(Eigen::Index rank) {
  const Factors f = trained_like(4 * rank, 4 * rank, rank);
  return f.up.transpose() * f.up;
}

void BM_GramEigen(benchmark::State& state) {
  const Eigen::MatrixXd gram = small_gram(arg(state, 0));
  const int options = state.range(1) != 0 ? Eigen::ComputeEigenvectors : Eigen::EigenvaluesOnly;
  for (auto _ : state) {
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eigen(gram, options);
    benchmark::DoNotOptimize(eigen.eigenvalues().data());
  }
}
BENCHMARK(BM_GramEigen)
    ->ArgNames({"R", "vectors"})
    ->ArgsProduct({{32, 64, 128}, {0, 1}})
    ->Unit(benchmark::kMicrosecond);

void BM_CoreSvd(benchmark::State& state) {
  const Eigen::Index rank = arg(state, 0);
  const Factors f = trained_like(4 * rank, 4 * rank, rank);
  const Eigen::MatrixXd core = f.up.topRows(rank) * f.down.leftCols(rank);  // decaying spectrum
  const unsigned options = state.range(1) != 0 ? Eigen::ComputeThinU | Eigen::ComputeThinV : 0;
  for (auto _ : state) {
    Eigen::BDCSVD<Eigen::MatrixXd> svd(core, options);
    benchmark::DoNotOptimize(svd.singularValues().data());
  }
}
BENCHMARK(BM_CoreSvd)
    ->ArgNames({"R", "vectors"})
    ->ArgsProduct({{32, 64, 128}, {0, 1}})
    ->Unit(benchmark::kMicrosecond);

// The same core by one-sided Jacobi (Eigen's JacobiSVD, the usual alternative at small sizes).
void BM_CoreSvdJacobi(benchmark::State& state) {
  const Eigen::Index rank = arg(state, 0);
  const Factors f = trained_like(4 * rank, 4 * rank, rank);
  const Eigen::MatrixXd core = f.up.topRows(rank) * f.down.leftCols(rank);
  for (auto _ : state) {
    Eigen::JacobiSVD<Eigen::MatrixXd> svd(core, Eigen::ComputeThinU | Eigen::ComputeThinV);
    benchmark::DoNotOptimize(svd.singularValues().data());
  }
}
BENCHMARK(BM_CoreSvdJacobi)->ArgName("R")->Arg(32)->Arg(64)->Arg(128)->Unit(benchmark::kMicrosecond);

void BM_GramCholesky(benchmark::State& state) {
  const Eigen::MatrixXd gram = small_gram(arg(state, 0));
  for (auto _ : state) {
    Eigen::LLT<Eigen::MatrixXd> llt(gram);
    benchmark::DoNotOptimize(llt.matrixLLT().data());
  }
}
BENCHMARK(BM_GramCholesky)->ArgName("R")->Arg(32)->Arg(64)->Arg(128)->Unit(benchmark::kMicrosecond);

// A finiteness check of both factors with Eigen's allFinite() (on row-major matrices Eigen 3.4 walks
// them column by column: a strided scalar loop; lorakit now checks contiguous data / Gram diagonals) ...
void BM_AllFinite(benchmark::State& state) {
  const Factors f = trained_like(arg(state, 0), arg(state, 1), arg(state, 2));
  for (auto _ : state) {
    bool finite = f.up.allFinite() && f.down.allFinite();
    benchmark::DoNotOptimize(finite);
  }
}
BENCHMARK(BM_AllFinite)->Apply(shape_args);

// ... and the same check over the contiguous storage.
void BM_AllFiniteContiguous(benchmark::State& state) {
  const Factors f = trained_like(arg(state, 0), arg(state, 1), arg(state, 2));
  auto finite = [](const MatrixRM& m) {
    return Eigen::Map<const Eigen::ArrayXd>(m.data(), m.size()).isFinite().all();
  };
  for (auto _ : state) {
    bool all = finite(f.up) && finite(f.down);
    benchmark::DoNotOptimize(all);
  }
}
BENCHMARK(BM_AllFiniteContiguous)->Apply(shape_args);

// Decoding / encoding one Flux linear1 up factor (21504 × 128 values) between bf16/fp16 and double.
void BM_Decode(benchmark::State& state) {
  const auto dtype = static_cast<lorakit::DType>(state.range(0));
  const std::size_t count = 21504 * 128;
  std::vector<std::byte> bytes(count * 2, std::byte{0x3c});
  std::vector<double> values(count);
  for (auto _ : state) {
    lorakit::decode(dtype, bytes, values);
    benchmark::DoNotOptimize(values.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes.size()));
  state.SetLabel(std::string(lorakit::dtype_name(dtype)));
}
BENCHMARK(BM_Decode)
    ->Arg(static_cast<int>(lorakit::DType::F16))
    ->Arg(static_cast<int>(lorakit::DType::BF16))
    ->Unit(benchmark::kMicrosecond);

void BM_Encode(benchmark::State& state) {
  const auto dtype = static_cast<lorakit::DType>(state.range(0));
  const std::size_t count = 21504 * 128;
  lorakit::testsupport::Rng rng(3);
  std::vector<double> values(count);
  for (double& v : values) v = 1e-3 * rng.normal();
  std::vector<std::byte> bytes(count * 2);
  for (auto _ : state) {
    lorakit::encode(dtype, values, bytes);
    benchmark::DoNotOptimize(bytes.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes.size()));
  state.SetLabel(std::string(lorakit::dtype_name(dtype)));
}
BENCHMARK(BM_Encode)
    ->Arg(static_cast<int>(lorakit::DType::F16))
    ->Arg(static_cast<int>(lorakit::DType::BF16))
    ->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
