"""Run under ``torchrun --nproc_per_node 2``: a TRL SFTTrainer with SftgateCallback on the tiny model.

``python torchrun_callback.py MODEL_DIR OUT_DIR fail|clean`` writes ``OUT_DIR/rank<N>.json`` per rank:
the steps trained, the rules of a stopping gate failure, and how many reports the callback made on
that rank (the gates run on rank 0 only). ``fail`` trains chat data on every token (the prompt is
trained: ``prompt_trained``); ``clean`` trains prompt/completion data on the completions.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def main(model_dir: str, out_dir: str, mode: str) -> int:
    import datasets
    import peft
    import transformers
    import trl

    from fixtures.tokenized import chat_records, pc_records
    from sftgate.runners.integrations.callback import SftgateCallback, SftgateGateError

    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    rank = int(os.environ.get("RANK", "0"))
    out = Path(out_dir)
    tok = transformers.AutoTokenizer.from_pretrained(model_dir)
    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir)
    records = chat_records(16) if mode == "fail" else pc_records(16)
    callback = SftgateCallback(report_dir=out / "reports")
    args = trl.SFTConfig(output_dir=str(out / "trainer"), max_steps=2, per_device_train_batch_size=4, report_to=[],
                         logging_steps=1, save_strategy="no", use_cpu=True, max_length=128, disable_tqdm=True,
                         ddp_find_unused_parameters=False)
    trainer = trl.SFTTrainer(model=model, args=args, train_dataset=datasets.Dataset.from_list(records),
                             processing_class=tok, callbacks=[callback],
                             peft_config=peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"],
                                                         task_type="CAUSAL_LM"))
    result: dict[str, object] = {"rank": rank, "world_size": int(args.world_size), "rules": []}
    try:
        trainer.train()
    except SftgateGateError as exc:
        result["rules"] = sorted(set(exc.rules))
    result["steps"] = int(trainer.state.global_step)
    result["reports"] = len(callback.reports)
    (out / f"rank{rank}.json").write_text(json.dumps(result))
    from sftgate.runners.work.ranks import close_process_group

    close_process_group()  # what sftgate's own torchrun entry does: no gloo threads left at exit
    return 0


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:4]))
