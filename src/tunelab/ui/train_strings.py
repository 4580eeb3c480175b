"""English and Chinese strings of the Train tab."""

from tunelab.ui.i18n import register

register({
    "train.stage": ("Stage", "训练阶段"),
    "train.stage.info": ("Only the stages this version can train are listed.", "仅列出当前版本可训练的阶段。"),
    "train.dataset_dir": ("Dataset folder (holds dataset_info.json)", "数据集文件夹（含 dataset_info.json）"),
    "train.datasets": ("Datasets", "数据集"),
    "train.datasets.info": ("Registered datasets whose rows suit the stage.", "已注册且适用于该阶段的数据集。"),
    "train.preview": ("Preview dataset", "预览数据集"),
    "train.page": ("Page", "页码"),
    "train.identity_name": ("Identity: name ({{name}} in data)", "身份：名字（数据中的 {{name}}）"),
    "train.identity_author": ("Identity: author ({{author}} in data)", "身份：作者（数据中的 {{author}}）"),
    "train.group.training": ("Training", "训练参数"),
    "train.group.data": ("Data", "数据参数"),
    "train.group.lora": ("LoRA", "LoRA 参数"),
    "train.group.freeze": ("Freeze", "冻结参数"),
    "train.group.preference": ("Preference (rm / dpo / kto)", "偏好训练参数（rm / dpo / kto）"),
    "train.group.rewards": ("Rewards (grpo / rloo)", "奖励（grpo / rloo）"),
    "train.group.online": ("Sampling and update (grpo / rloo)", "采样与更新（grpo / rloo）"),
    "train.output_dir": ("Output dir (empty: a new folder under the runs dir)", "输出目录（留空则在运行目录下新建）"),
    "train.extra": ("Extra keys (YAML or key=value lines)", "其他参数（YAML 或 key=value，每行一个）"),
    "train.extra.info": ("Any recipe key; checked by the same code as `tunelab train`.",
                         "任意配方参数；由与 `tunelab train` 相同的代码检查。"),
    "train.gpu": ("GPU for the memory estimate", "用于显存估算的 GPU"),
    "train.gpu.detected": ("detected", "自动检测"),
    "train.cmd": ("Preview command", "预览命令"),
    "train.args_path": ("Arguments file (YAML)", "参数文件（YAML）"),
    "train.save_args": ("Save arguments", "保存参数"),
    "train.load_args": ("Load arguments", "加载参数"),
    "train.start": ("Start", "开始"),
    "train.abort": ("Abort", "中止"),
    "train.resume": ("Resume this run", "恢复此运行"),
    "train.continue": ("Continue from adapter", "从适配器继续"),
    "train.explain": ("**Resume this run** continues the SAME run shown below from its last checkpoint "
                      "(optimizer, scheduler, step and data position restored; resume_from_checkpoint). "
                      "**Continue from adapter** starts a NEW run in a new output dir from the weights of "
                      "the adapter picked in the top bar (or the run shown), with a fresh optimizer "
                      "(adapter_name_or_path). **Abort** saves a checkpoint at the current step, then stops.",
                      "**恢复此运行**：从最后一个检查点继续下方显示的同一个运行（恢复优化器、调度器、步数和数据位置；"
                      "resume_from_checkpoint）。**从适配器继续**：以顶栏所选适配器（或下方显示的运行）的权重，"
                      "在新的输出目录中开始一个新运行，优化器重新初始化（adapter_name_or_path）。"
                      "**中止**：在当前步保存检查点后停止。"),
    "train.watch": ("Run shown", "显示的运行"),
    "train.loss": ("Loss", "损失"),
    "train.log": ("Log (last lines)", "日志（最后几行）"),
    "train.yaml": ("Recipe YAML", "配方 YAML"),
    "train.live.plan": ("{samples} samples → effective batch {batch} → {per_epoch} steps per epoch → "
                        "{total} total steps", "{samples} 条样本 → 有效批大小 {batch} → 每轮 {per_epoch} 步 → "
                        "共 {total} 步"),
    "train.live.max_steps": ("max_steps={max_steps} wins over num_train_epochs ({epochs:.2f} epochs).",
                             "max_steps={max_steps} 优先于 num_train_epochs（相当于 {epochs:.2f} 轮）。"),
    "train.live.memory_fits": ("Memory: about {gib:.2f} GiB per GPU, fits the {device:.0f} GiB GPU.",
                               "显存：每张 GPU 约 {gib:.2f} GiB，{device:.0f} GiB 的 GPU 放得下。"),
    "train.live.memory_nofit": ("Memory: about {gib:.2f} GiB per GPU, does NOT fit the {device:.0f} GiB GPU. "
                                "Try: {tips}", "显存：每张 GPU 约 {gib:.2f} GiB，{device:.0f} GiB 的 GPU "
                                "放不下。可尝试：{tips}"),
    "train.live.memory_nogpu": ("Memory: about {gib:.2f} GiB per GPU (no GPU detected; pick one to check the fit).",
                                "显存：每张 GPU 约 {gib:.2f} GiB（未检测到 GPU；选择一个 GPU 以检查是否放得下）。"),
    "train.live.memory_unknown": ("Memory estimate unavailable: {error}", "无法估算显存：{error}"),
    "train.live.error": ("Cannot plan this recipe yet: {error}", "暂时无法规划此配方：{error}"),
    "train.preview.header": ("Dataset {name}, page {page}; trained tokens are highlighted.",
                             "数据集 {name}，第 {page} 页；高亮部分为参与训练的词元。"),
    "train.preview.counts": ("{tokens} tokens, {trained} trained", "共 {tokens} 个词元，其中 {trained} 个参与训练"),
    "train.preview.empty": ("No rows on this page.", "此页没有数据。"),
    "train.preview.no_dataset": ("pick at least one dataset first", "请先选择至少一个数据集"),
    "train.msg.error": ("Error: {error}", "错误：{error}"),
    "train.msg.started": ("Started training in {path}.", "已在 {path} 开始训练。"),
    "train.msg.aborting": ("Abort sent (process {pid}): a checkpoint is saved at the current step, then it stops.",
                           "已发送中止信号（进程 {pid}）：将在当前步保存检查点后停止。"),
    "train.msg.saved": ("Arguments saved to {path}.", "参数已保存到 {path}。"),
    "train.msg.loaded": ("Arguments loaded from {path}.", "已从 {path} 加载参数。"),
    "train.msg.no_run": ("No run is shown; start one or pick one in 'Run shown'.",
                         "当前未显示运行；请开始训练或在“显示的运行”中选择一个。"),
    "train.msg.no_adapter": ("Pick an adapter in the top bar, or show a finished run, to continue from.",
                             "请在顶栏选择一个适配器，或显示一个已完成的运行，以便从其继续。"),
    "train.status": ("Status: {status}", "状态：{status}"),
    "train.progress": ("step {step}/{total} · {percent}% · elapsed {elapsed} · ETA {eta} · {tps} tokens/s",
                       "第 {step}/{total} 步 · {percent}% · 已用 {elapsed} · 剩余 {eta} · {tps} 词元/秒"),
    "train.checkpoints": ("Checkpoints: {names}", "检查点：{names}"),
    "status.running": ("running", "运行中"),
    "status.starting": ("starting (loading data and model)", "启动中（加载数据和模型）"),
    "status.completed": ("completed", "已完成"),
    "status.failed": ("failed", "失败"),
    "status.interrupted": ("interrupted", "已中断"),
    "status.created": ("created", "已创建"),
    "status.unknown": ("not started", "未开始"),
})
