#pragma once
// Where a module sits in its model, for the heat map: the block (row) and the layer within it (column),
// read from the module's name in any family's spelling.
#include <string>
#include <string_view>

namespace lorakit::detail {

struct BlockPlace {
  std::string component;  // "" for the denoiser (UNet or transformer), else the text encoder: "te", "te1", ...
  std::string block;  // "down 1", "mid", "up 2", "input 4", "double 7", "single 12", "block 3", "te1 layer 5", "other"
  std::string part;   // the layer, with indices and containers dropped: "attn1_to_q", "img_attn_qkv", "linear1"
  int order[3] = {};  // sort key of the block: component, stage, index
};

BlockPlace block_place(std::string_view stem);

}  // namespace lorakit::detail
