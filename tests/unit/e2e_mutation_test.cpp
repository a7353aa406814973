// Broken adapters in valid containers: realistic files of every kind, mutated where loaders and lorakit
// look (missing or renamed factors, wrong shapes and dtypes, odd alphas, NaN/Inf, zero factors,
// tampered metadata, stray adapter-like tensors). Whatever the mutation, planning and resizing must
// either succeed with a valid output or fail with a lorakit::Error naming the file — never crash, throw
// anything else, or report an internal error.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <typeinfo>
#include <random>
#include <string>
#include <vector>

#include "lora_gen.hpp"
#include "lorakit/error.hpp"
#include "lorakit/resize.hpp"
#include "lorakit/safetensors.hpp"
#include "scratch_folder.hpp"

namespace lorakit {
namespace {

namespace fs = std::filesystem;
using testsupport::GenSpec;
using testsupport::RawTensor;

struct Seed {
  const char* arch;
  const char* family;
  const char* kind;
  bool tucker;
};

const Seed kSeeds[] = {
    {"sd15", "kohya", "locon", false}, {"sd15", "kohya", "tucker", true}, {"sd15", "kohya", "loha", true},
    {"flux", "lycoris", "lokr", false}, {"sd15", "kohya", "lokr", true},  {"flux", "peft", "lora", false},
    {"zimage", "kohya", "dora", false}, {"wan14b", "comfy", "lora", false}, {"flux", "xlabs", "lora", false},
};

struct Image {
  std::vector<RawTensor> tensors;
  Metadata metadata;
};

Image generate(const Seed& seed, const fs::path& path) {
  GenSpec spec;
  spec.arch = seed.arch;
  spec.family = seed.family;
  spec.kind = seed.kind;
  spec.tucker = seed.tucker;
  spec.conv = std::string(seed.arch) == "sd15";
  spec.rank = 4;
  spec.shrink = 32;
  spec.text_encoder = false;
  if (spec.family == "peft") spec.peft_metadata = testsupport::PeftMetadata::plain;
  testsupport::write_lora(spec, path, true);
  const Reader reader(path);
  Image image;
  image.metadata = reader.header().metadata;
  for (const TensorInfo& info : reader.header().tensors) {
    image.tensors.push_back({info.name, info.dtype, info.shape, {}, reader.read(info)});
  }
  return image;
}

std::uint64_t byte_size(DType dtype, const std::vector<std::uint64_t>& shape) {
  std::uint64_t count = 1;
  for (std::uint64_t d : shape) count *= d;
  return count * dtype_bits(dtype) / 8;
}

// Gives a tensor a new dtype or shape, refilling its bytes (repeating the old ones) to stay a valid file.
void reshape(RawTensor& tensor, DType dtype, std::vector<std::uint64_t> shape) {
  const std::vector<std::byte> old = tensor.bytes;
  tensor.dtype = dtype;
  tensor.shape = std::move(shape);
  tensor.bytes.resize(byte_size(dtype, tensor.shape));
  for (std::size_t i = 0; i < tensor.bytes.size(); ++i) tensor.bytes[i] = old.empty() ? std::byte{0x3c} : old[i % old.size()];
}

// Renames unless the new name is taken (a container cannot hold it twice).
void replace_in_name(std::vector<RawTensor>& tensors, RawTensor& tensor, const std::string& from, const std::string& to) {
  std::string name = tensor.name;
  name.replace(name.find(from), from.size(), to);
  for (const RawTensor& other : tensors) {
    if (other.name == name) return;
  }
  tensor.name = std::move(name);
}

void mutate(Image& image, std::mt19937& rng) {
  std::vector<RawTensor>& tensors = image.tensors;
  RawTensor& t = tensors[rng() % tensors.size()];
  std::vector<std::uint64_t> shape = t.shape;
  switch (rng() % 12) {
    case 0:  // a factor or alpha goes missing
      tensors.erase(tensors.begin() + static_cast<std::ptrdiff_t>(&t - tensors.data()));
      break;
    case 1:  // one dimension changes
      if (!shape.empty()) {
        std::uint64_t& d = shape[rng() % shape.size()];
        const std::uint64_t choices[] = {0, 1, d + 1, d > 0 ? d - 1 : 0, d * 2};
        d = choices[rng() % 5];
        reshape(t, t.dtype, shape);
      }
      break;
    case 2: {  // another dtype, float or not
      const DType dtypes[] = {DType::F16, DType::BF16, DType::F32, DType::F64, DType::I32, DType::U8, DType::BOOL, DType::F8_E4M3};
      reshape(t, dtypes[rng() % 8], shape);
      break;
    }
    case 3:  // one more or one fewer axis
      if (shape.empty() || rng() % 2) shape.push_back(1); else shape.pop_back();
      reshape(t, t.dtype, shape);
      break;
    case 4:  // NaN / Inf / huge bit patterns
      for (std::size_t i = 1; i < t.bytes.size(); i += 2) t.bytes[i] = std::byte(rng() % 2 ? 0xff : 0x7f);
      break;
    case 5:  // a renamed role
      for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
               {"lora_down", "lora_up"}, {"lora_up", "lora_down"}, {".alpha", ".lora_mid.weight"}, {"lora_A", "lora_B"},
               {"hada_w1_a", "hada_w2_b"}, {"lokr_w1", "lokr_w2"}, {".weight", ""}, {".down", ".up"}}) {
        if (t.name.find(from) != std::string::npos) {
          replace_in_name(tensors, t, from, to);
          break;
        }
      }
      break;
    case 6:  // alpha of an odd shape
      for (RawTensor& other : tensors) {
        if (other.name.ends_with(".alpha") && rng() % 3 == 0) {
          const std::vector<std::vector<std::uint64_t>> shapes = {{}, {1}, {2}, {1, 1}, {0}};
          reshape(other, other.dtype, shapes[rng() % shapes.size()]);
        }
      }
      break;
    case 7: {  // tampered metadata
      const char* keys[] = {"ss_network_dim", "ss_network_alpha", "lora_adapter_metadata", "ss_training_comment"};
      const char* values[] = {"", "x", "{\"r\": 0}", "{\"r\": \"a\", \"lora_alpha\": -1}", "null", "1e309",
                              "{\"rank_pattern\": {\"a\": 3}, \"r\": 4, \"lora_alpha\": 8}"};
      image.metadata[keys[rng() % 4]] = values[rng() % 7];
      break;
    }
    case 8:  // an all-zero factor
      std::fill(t.bytes.begin(), t.bytes.end(), std::byte{0});
      break;
    case 9:  // a transposed matrix
      if (shape.size() == 2) reshape(t, t.dtype, {shape[1], shape[0]});
      break;
    case 10: {  // a stray adapter-looking tensor
      const char* names[] = {"lora_unet_x.lora_down.weight", "lora_unet_x.alpha", "foo.lora_A.weight",
                             "lora_unet_q.lora_mid.weight", "lora_unet_q.scale", "m.diff_b", "lycoris_z.lokr_w1"};
      RawTensor stray{names[rng() % 7], DType::F16, {}, {}, {}};
      const std::vector<std::vector<std::uint64_t>> shapes = {{4, 8}, {8, 4}, {4}, {}, {4, 8, 3, 3}};
      reshape(stray, DType::F16, shapes[rng() % shapes.size()]);
      bool taken = false;
      for (const RawTensor& other : tensors) taken = taken || other.name == stray.name;
      if (!taken) tensors.push_back(std::move(stray));
      break;
    }
    default:  // a 2-D factor read as a conv3d one
      if (shape.size() == 2) reshape(t, t.dtype, {shape[0], shape[1], 1, 1, 1});
      break;
  }
}

// Success must leave a readable output; failure must be a lorakit::Error other than `internal`, naming
// the file. Returns whether the action succeeded.
bool expect_clean(const std::function<void()>& action, const fs::path& input, const fs::path& output,
                  const std::string& what) {
  try {
    action();
    if (!output.empty()) {
      EXPECT_NO_THROW(Reader{output}) << what;
    }
    return true;
  } catch (const Error& e) {
    EXPECT_NE(e.code(), ErrorCode::internal) << what << ": " << e.what();
    EXPECT_NE(std::string(e.what()).find(input.string()), std::string::npos) << what << ": " << e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << what << ": " << typeid(e).name() << ": " << e.what();
  }
  return false;
}

TEST(MutatedAdapters, FailCleanlyOrResizeToAValidFile) {
  testutil::ScratchFolder folder;
  std::mt19937 rng(2026);
  int mutants = 0, resized = 0, refused = 0;
  for (const Seed& seed : kSeeds) {
    const Image original = generate(seed, folder.path() / "seed.safetensors");
    for (int round = 0; round < 25; ++round, ++mutants) {
      Image image = original;
      const auto mutations = 1 + rng() % 3;
      for (std::size_t m = 0; m < mutations; ++m) mutate(image, rng);
      const fs::path input = folder.path() / "mutant.safetensors";
      const fs::path output = folder.path() / "out.safetensors";
      testsupport::write_tensors(image.tensors, image.metadata, input, true, !image.metadata.empty());
      const std::string what = std::string(seed.family) + "/" + seed.kind + " mutant " + std::to_string(round);

      ResizeOptions dynamic;
      dynamic.method = RankMethod::sv_fro;
      dynamic.param = 0.9;
      expect_clean([&] { plan_file(input, dynamic); }, input, {}, what + " (plan)");
      ResizeOptions fixed;
      fixed.rank = 2;
      fixed.to_lora = true;
      fixed.force = true;
      (expect_clean([&] { resize_file(input, output, fixed); }, input, output, what + " (resize)") ? resized : refused)++;
    }
  }
  EXPECT_EQ(mutants, 225);
  // Both outcomes occur: the mutations reach the validation and the resize itself.
  EXPECT_GT(resized, 40);
  EXPECT_GT(refused, 40);
}

}  // namespace
}  // namespace lorakit
