"""LLaMA-Factory keys that TuneLab accepts but does not act on, each with the reason.

A recipe written for LLaMA-Factory must never be refused for a key that tool documents. Keys
TuneLab implements live in the typed sections; the rest are listed here, and the config loader
turns each one a recipe sets into one note: ``'KEY' has no effect in TuneLab: REASON``.
The list was taken from LLaMA-Factory 0.9.5's ModelArguments, DataArguments,
FinetuningArguments, GeneratingArguments and its TrainingArguments additions.
"""

from __future__ import annotations

_TEXT_ONLY = "TuneLab trains text models only (no image, video or audio inputs)"
_NOT_YET = "TuneLab does not implement this preference-training option"
_DERIVED = ("LLaMA-Factory documents it as derived ('do not specify it'); TuneLab derives the same "
            "from bf16/fp16, cutoff_len and packing")
_NO_OPTIMIZER = ("this optimizer is not wired into TuneLab; transformers' own `optim` key "
                 "(e.g. optim: galore_adamw, adamw_8bit) is")
_NO_KERNEL = "this accelerator or backend is not part of TuneLab"
_NO_TOKENS = "TuneLab does not change the tokenizer's vocabulary; add tokens to the model beforehand"
_NO_EVAL = ("training reports eval loss only; generate-and-score runs after training with "
            "`tunelab eval RUN --predict --dataset D`")
_NO_PROFILER = "TuneLab has no profiler hook; use torch.profiler around `tunelab train` instead"
_NO_LOSS = "TuneLab trains with the standard cross-entropy loss only"
_NO_PPO = ("TuneLab has no ppo stage (TRL >= 1.13 ships no PPOTrainer); stage grpo or rloo with "
           "reward_model learns from a reward model instead")

_GROUPS: dict[str, tuple[str, ...]] = {
    _TEXT_ONLY: ("image_max_pixels", "image_min_pixels", "image_do_pan_and_scan", "crop_to_patches",
                 "video_max_pixels", "video_min_pixels", "video_fps", "video_maxlen", "use_audio_in_video",
                 "audio_sampling_rate", "media_dir", "freeze_vision_tower",
                 "freeze_multi_modal_projector", "freeze_language_model"),
    _NOT_YET: ("pref_bco_weight", "ld_alpha"),
    _DERIVED: ("compute_dtype", "device_map", "model_max_length", "block_diag_attn"),
    _NO_OPTIMIZER: ("use_galore", "galore_target", "galore_rank", "galore_update_interval", "galore_scale",
                    "galore_proj_type", "galore_layerwise", "use_apollo", "apollo_target", "apollo_rank",
                    "apollo_update_interval", "apollo_scale", "apollo_proj", "apollo_proj_type",
                    "apollo_scale_type", "apollo_layerwise", "apollo_scale_front", "use_badam",
                    "badam_mode", "badam_start_block", "badam_switch_mode", "badam_switch_interval",
                    "badam_update_ratio", "badam_mask_mode", "badam_verbose", "use_adam_mini", "use_muon",
                    "loraplus_lr_ratio", "loraplus_lr_embedding"),
    _NO_KERNEL: ("use_unsloth", "use_v1_kernels", "use_kt",
                 "kt_weight_path", "kt_expert_checkpoint_path", "kt_use_lora_experts", "kt_lora_expert_num",
                 "kt_lora_expert_intermediate_size", "shift_attn", "mixture_of_depths", "use_mca",
                 "use_hyper_parallel", "hyper_parallel_args", "ray_num_workers", "ray_init_kwargs",
                 "fp8", "fp8_backend", "fp8_enable_fsdp_float8_all_gather", "sglang_maxlen",
                 "sglang_mem_fraction", "sglang_tp_size", "sglang_config", "sglang_lora_backend",
                 "vllm_config", "pure_bf16"),
    _NO_TOKENS: ("resize_vocab", "split_special_tokens", "add_tokens", "add_special_tokens",
                 "new_special_tokens_config", "init_special_tokens"),
    _NO_EVAL: ("predict_with_generate", "generation_max_length", "generation_num_beams",
               "generation_config", "eval_num_beams", "compute_accuracy", "eval_on_each_dataset",
               "sortish_sampler"),
    _NO_PROFILER: ("enable_torch_profiler", "profiler_output_dir", "profiler_wait_steps",
                   "profiler_warmup_steps", "profiler_active_steps", "profiler_repeat",
                   "profiler_record_shapes", "profiler_profile_memory", "profiler_with_stack",
                   "profile_modules"),
    _NO_PPO: ("ppo_epochs", "ppo_buffer_size", "ppo_score_norm", "ppo_whiten_rewards", "ppo_target"),
    _NO_LOSS: ("use_dft_loss", "use_asft_loss", "asft_alpha", "use_eaft_loss", "eaft_alpha"),
    "other PEFT methods than LoRA/DoRA are not wired in": (
        "oft_rank", "oft_block_size", "oft_target", "module_dropout", "pissa_iter",
        "pissa_convert", "use_llama_pro"),
    "SwanLab is not integrated; report_to: tensorboard or wandb work": (
        "use_swanlab", "swanlab_project", "swanlab_workspace", "swanlab_run_name", "swanlab_mode",
        "swanlab_api_key", "swanlab_logdir", "swanlab_lark_webhook_url", "swanlab_lark_secret"),
    "TuneLab reads local files and the Hugging Face Hub only": ("ms_hub_token", "om_hub_token"),
    "datasets are read into memory and concatenated (streaming and mixing are not supported)": (
        "buffer_size", "mix_strategy", "interleave_probs", "data_shared_file_system"),
    "GPTQ export is not supported; export writes full-precision weights (and GGUF)": (
        "export_quantization_bit", "export_quantization_dataset", "export_quantization_nsamples",
        "export_quantization_maxlen"),
}

_SINGLE: dict[str, str] = {
    "include_effective_tokens_per_second": (
        "TuneLab always logs tokens_per_s in events.jsonl at every logging step, and its batches "
        "are padding-free by default, so every token counted is an effective one"),
    "hf_hub_token": "log in with `hf auth login` or set HF_TOKEN; TuneLab never stores tokens in recipes",
    "low_cpu_mem_usage": "transformers 5 always loads weights this way",
    "use_kv_cache": "generation always uses the KV cache",
    "use_reentrant_gc": "TuneLab checkpoints non-reentrantly (reentrantly only for gradient_checkpointing: offload)",
    "upcast_layernorm": "norm weights keep the model's dtype (mixed precision computes them in fp32)",
    "upcast_lmhead_output": "the chunked loss computes logits in float32 already",
    "print_param_status": "TuneLab prints the trainable parameter count; use --debug for more",
    "offload_folder": "TuneLab does not offload weights to disk",
    "quantization_method": "TuneLab quantizes on the fly with bitsandbytes only (what 'bnb' asks for)",
    "quantization_device_map": "quantized models are placed by TuneLab on the training device",
    "rope_scaling": "set rope scaling in the model's config.json; TuneLab does not rewrite it",
    "moe_aux_loss_coef": "the model's own config.json value is used",
    "train_from_scratch": "TuneLab always starts from the model's weights",
    "adapter_folder": "use adapter_name_or_path",
    "preprocessing_batch_size": "TuneLab tokenises sample by sample and caches the result",
    "ignore_pad_token_for_loss": "pad tokens never count in TuneLab's loss (their labels are -100)",
    "tool_format": "tool calls are written in the chat template's own format",
    "preserve_thinking": "history reasoning is kept as the data gives it (enable_thinking controls the rest)",
    "disable_shuffling": "use the Trainer's own data order keys (e.g. data_seed)",
    "early_stopping_steps": "early stopping is not wired in",
    "master_addr": "torchrun reads MASTER_ADDR from the environment",
    "master_port": "torchrun reads MASTER_PORT from the environment",
    "num_beams": "chat and serve sample or decode greedily; beam search is not offered",
    "length_penalty": "only used by beam search, which is not offered",
    "max_length": "use max_new_tokens",
    "skip_special_tokens": "answers never show special tokens",
}

INERT_KEYS: dict[str, str] = {**{key: why for why, keys in _GROUPS.items() for key in keys}, **_SINGLE}


def inert_key_note(key: str) -> str | None:
    """The note for a LLaMA-Factory key TuneLab accepts without acting on it, else None."""
    why = INERT_KEYS.get(key)
    return f"'{key}' has no effect in TuneLab: {why}" if why else None
