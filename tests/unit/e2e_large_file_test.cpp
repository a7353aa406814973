// Files over 4 GiB: a LoRA module whose factors lie beyond offset 2³² (the 4.1 GiB of padding before
// them is a hole of a sparse file, so the input costs no disk) is inspected, planned and resized; the
// resized factors are written past 4 GiB of the output too. The output goes to /dev/shm when it has
// room (4.1 GiB written to a disk with fsync takes minutes on a shared CI disk), else to the temp folder.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <Eigen/Dense>

#include "lorakit/dtype.hpp"
#include "lorakit/inspect.hpp"
#include "lorakit/resize.hpp"
#include "lorakit/safetensors.hpp"

namespace lorakit {
namespace {

namespace fs = std::filesystem;

constexpr std::uint64_t kFourGiB = std::uint64_t{1} << 32;
constexpr std::uint64_t kPadElements = std::uint64_t{8} << 20;  // U64: 64 MiB per pad tensor
constexpr int kPads = 66;                                        // 4.125 GiB of padding
constexpr Eigen::Index kOut = 96, kIn = 80, kRank = 12;
constexpr std::size_t kNewRank = 4;
const std::string kDown = "transformer.blocks.0.attn.to_q.lora_A.weight";
const std::string kUp = "transformer.blocks.0.attn.to_q.lora_B.weight";

fs::path roomy_folder() {
  struct statvfs info {};
  const bool shm_fits = ::statvfs("/dev/shm", &info) == 0 &&
                        static_cast<std::uint64_t>(info.f_bavail) * info.f_frsize > std::uint64_t{6} << 30;
  const fs::path base = shm_fits ? fs::path("/dev/shm") : fs::temp_directory_path();
  return base / ("lorakit_large_" + std::to_string(::getpid()));
}

std::vector<std::byte> f32_bytes(const Eigen::MatrixXf& row_major_values) {
  const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> m = row_major_values;
  std::vector<std::byte> bytes(static_cast<std::size_t>(m.size()) * 4);
  std::memcpy(bytes.data(), m.data(), bytes.size());
  return bytes;
}

Eigen::MatrixXd read_matrix(const Reader& reader, const std::string& name) {
  const TensorInfo* info = reader.header().find(name);
  EXPECT_NE(info, nullptr) << name;
  const std::vector<double> values = reader.read_doubles(*info);
  return Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
      values.data(), static_cast<Eigen::Index>(info->shape[0]), static_cast<Eigen::Index>(info->shape[1]));
}

class LargeFile : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::remove_all(folder_);
    fs::create_directories(folder_);
    std::mt19937 random(7);
    std::normal_distribution<float> normal;
    up_ = Eigen::MatrixXf::NullaryExpr(kOut, kRank, [&] { return normal(random); });
    down_ = Eigen::MatrixXf::NullaryExpr(kRank, kIn, [&] { return normal(random); });
    write_sparse_input();
  }
  void TearDown() override { fs::remove_all(folder_); }

  // Pads (U64) sort before the F32 factors in the reference order, so the factors come last.
  void write_sparse_input() {
    std::vector<TensorSpec> specs;
    for (int i = 0; i < kPads; ++i) {
      specs.push_back({"pad." + std::to_string(100 + i), DType::U64, {kPadElements}});
    }
    specs.push_back({kDown, DType::F32, {kRank, kIn}});
    specs.push_back({kUp, DType::F32, {kOut, kRank}});
    const Layout layout = plan_layout(specs, {}, false);
    const int fd = ::open(input_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::pwrite(fd, layout.prefix.data(), layout.prefix.size(), 0), static_cast<ssize_t>(layout.prefix.size()));
    for (const TensorInfo& tensor : layout.tensors) {
      if (tensor.dtype != DType::F32) continue;
      const std::vector<std::byte> bytes = f32_bytes(tensor.name == kDown ? down_ : up_);
      const auto offset = static_cast<off_t>(layout.prefix.size() + tensor.begin);
      ASSERT_EQ(::pwrite(fd, bytes.data(), bytes.size(), offset), static_cast<ssize_t>(bytes.size()));
    }
    ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(layout.file_size())), 0);
    ::close(fd);
  }

  // ΔW's best rank-k approximation, by a dense double SVD of the product (the independent reference).
  Eigen::MatrixXd truncated_reference(std::size_t k) const {
    const Eigen::MatrixXd delta = up_.cast<double>() * down_.cast<double>();
    const Eigen::JacobiSVD<Eigen::MatrixXd> svd(delta, Eigen::ComputeThinU | Eigen::ComputeThinV);
    const auto n = static_cast<Eigen::Index>(k);
    return svd.matrixU().leftCols(n) * svd.singularValues().head(n).asDiagonal() * svd.matrixV().leftCols(n).transpose();
  }

  ResizeOptions fixed_rank() const {
    ResizeOptions options;
    options.rank = kNewRank;
    options.threads = 2;
    return options;
  }

  fs::path folder_ = roomy_folder();
  fs::path input_ = folder_ / "big.safetensors";
  fs::path output_ = folder_ / "big.resized.safetensors";
  Eigen::MatrixXf up_, down_;
};

TEST_F(LargeFile, FactorsBeyondFourGiBAreInspectedPlannedAndResized) {
  const Reader input(input_);
  ASSERT_GT(input.file_size(), kFourGiB);
  ASSERT_GT(input.header().data_start() + input.header().find(kDown)->begin, kFourGiB);
  EXPECT_TRUE(read_matrix(input, kUp).isApprox(up_.cast<double>()));

  const Inspection inspection = inspect_file(input);
  EXPECT_EQ(inspection.module_count, 1U);
  EXPECT_EQ(inspection.passthrough.size(), static_cast<std::size_t>(kPads));
  EXPECT_EQ(inspection.file_size, input.file_size());

  const ResizeReport plan = plan_file(input_, fixed_rank());
  ASSERT_EQ(plan.modules.size(), 1U);
  EXPECT_EQ(plan.modules[0].new_rank, kNewRank);
  const Eigen::MatrixXd delta = up_.cast<double>() * down_.cast<double>();
  EXPECT_NEAR(plan.modules[0].fro_retained, truncated_reference(kNewRank).norm() / delta.norm(), 1e-6);

  const ResizeReport report = resize_file(input_, output_, fixed_rank());
  EXPECT_EQ(report.output_bytes, fs::file_size(output_));
  const Reader output(output_);
  ASSERT_GT(output.file_size(), kFourGiB);
  ASSERT_GT(output.header().data_start() + output.header().find(kDown)->begin, kFourGiB);
  const Eigen::MatrixXd written = read_matrix(output, kUp) * read_matrix(output, kDown);
  EXPECT_LT((written - truncated_reference(kNewRank)).norm(), 1e-5 * delta.norm());
  // The pass-through padding is copied: its last bytes, written past 4 GiB, are the input's zeros.
  const TensorInfo& last_pad = *output.header().find("pad." + std::to_string(100 + kPads - 1));
  std::vector<std::byte> tail(1 << 20, std::byte{1});
  output.read_at(output.header().data_start() + last_pad.end - tail.size(), tail);
  EXPECT_EQ(std::count(tail.begin(), tail.end(), std::byte{0}), static_cast<std::ptrdiff_t>(tail.size()));
}

}  // namespace
}  // namespace lorakit
