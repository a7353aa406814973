// Heat-map places read from real trainers' module names (FORMATS.md §3), one architecture per line.
#include <gtest/gtest.h>

#include <string>

#include "analysis/blocks.hpp"

namespace lorakit::detail {
namespace {

void expect_place(const std::string& stem, const std::string& block, const std::string& part) {
  const BlockPlace place = block_place(stem);
  EXPECT_EQ(place.block, block) << stem;
  EXPECT_EQ(place.part, part) << stem;
}

TEST(BlockPlace, UNets) {
  expect_place("lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k", "down 1", "attn2_to_k");
  expect_place("lora_unet_down_blocks_0_resnets_1_conv1", "down 0", "resnets_conv1");
  expect_place("lora_unet_mid_block_attentions_0_proj_in", "mid", "proj_in");
  expect_place("lora_unet_up_blocks_3_attentions_2_transformer_blocks_0_ff_net_0_proj", "up 3", "ff_net_proj");
  expect_place("lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_k", "input 4", "attn1_to_k");
  expect_place("lora_unet_middle_block_1_proj_out", "mid", "proj_out");
  expect_place("lora_unet_output_blocks_11_1_emb_layers_1", "output 11", "emb_layers");
  expect_place("unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q", "down 0", "attn1_to_q");
  expect_place("lora_unet_conv_in", "other", "conv_in");
}

TEST(BlockPlace, Transformers) {
  expect_place("lora_unet_double_blocks_7_img_attn_qkv", "double 7", "img_attn_qkv");
  expect_place("lora_unet_single_blocks_12_linear1", "single 12", "linear1");
  expect_place("transformer.single_transformer_blocks.0.attn.to_k", "single 0", "attn_to_k");
  expect_place("transformer.transformer_blocks.3.ff.net.0.proj", "double 3", "ff_net_proj");
  expect_place("double_blocks.0.processor.qkv_lora1", "double 0", "qkv_lora1");
  expect_place("lora_unet_joint_blocks_5_context_block_attn_qkv", "joint 5", "context_block_attn_qkv");
  expect_place("lora_unet_blocks_9_cross_attn_k_img", "block 9", "cross_attn_k_img");
  expect_place("lora_unet__blocks_0_ffn_0", "block 0", "ffn");
  expect_place("diffusion_model.blocks.2.self_attn.q", "block 2", "self_attn_q");
  expect_place("lora_unet_layers_12_attention_to_q", "layer 12", "attention_to_q");
}

TEST(BlockPlace, TextEncodersAreRowsOfTheirOwn) {
  expect_place("lora_te_text_model_encoder_layers_3_self_attn_q_proj", "te layer 3", "self_attn_q_proj");
  expect_place("lora_te2_text_model_encoder_layers_31_mlp_fc2", "te2 layer 31", "mlp_fc2");
  expect_place("text_encoder.text_model.encoder.layers.0.self_attn.v_proj", "te layer 0", "self_attn_v_proj");
}

TEST(BlockPlace, OrderFollowsTheArchitecture) {
  auto key = [](const std::string& stem) {
    const BlockPlace p = block_place(stem);
    return std::tuple(p.order[0], p.order[1], p.order[2]);
  };
  EXPECT_LT(key("lora_unet_down_blocks_3_resnets_0_conv1"), key("lora_unet_mid_block_resnets_0_conv1"));
  EXPECT_LT(key("lora_unet_mid_block_resnets_0_conv1"), key("lora_unet_up_blocks_0_resnets_0_conv1"));
  EXPECT_LT(key("lora_unet_double_blocks_18_img_mlp_0"), key("lora_unet_single_blocks_0_linear1"));
  EXPECT_LT(key("lora_unet_layers_2_attention_to_q"), key("lora_unet_layers_10_attention_to_q"));
  EXPECT_LT(key("lora_unet_up_blocks_3_resnets_0_conv1"), key("lora_te_text_model_encoder_layers_0_mlp_fc1"));
}

}  // namespace
}  // namespace lorakit::detail
