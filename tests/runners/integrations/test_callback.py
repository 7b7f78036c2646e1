"""SftgateCallback in TRL's own SFTTrainer on the tiny offline model: each failure built in TRL stops the
run before the first optimizer step with its rule; clean setups train to the end with the metrics logged;
the same failures through `sftgate labels` on the dataset TRL prepared."""

from __future__ import annotations

import json

import pytest

from fixtures.tokenized import chat_records, pc_records
from fixtures.tokenizers import template_text

pytest.importorskip("trl")

LONG_PROMPTS = [{"prompt": "Question: " + " ".join(["word"] * 60) + " Answer:", "completion": " yes"} for _ in range(8)]


def conversational_pc(n: int = 8) -> list[dict]:
    return [{"prompt": r["messages"][:2], "completion": r["messages"][2:3]} for r in chat_records(n)]


def mask_pad_collator(tok):
    """The classic script: pad = eos and a language-modeling collator that masks every pad label."""
    import transformers

    lm = transformers.DataCollatorForLanguageModeling(tok, mlm=False)
    return lambda features: lm([{"input_ids": f["input_ids"]} for f in features])


# name -> (records, template, pad_is_eos, collator, SFTConfig options, rule, also through `sftgate labels`)
FAILURES = {
    "prompt_trained": (chat_records, None, False, None, {}, "prompt_trained", True),
    "completion_only_loss_off": (pc_records, None, False, None, {"completion_only_loss": False}, "prompt_trained", True),
    "end_of_turn_not_in_generation": (chat_records, "chatml_generation_no_eot.jinja", False, None,
                                      {"assistant_only_loss": True}, "eos_masked", True),
    "pad_is_eos_and_collator_masks_pads": (pc_records, None, True, mask_pad_collator, {}, "eos_masked", False),
    "packing_without_position_reset": (pc_records, None, False, None,
                                       {"packing": True, "packing_strategy": "wrapped", "max_length": 64},
                                       "packing_leak", True),
    "truncation_leaves_nothing": (lambda n: LONG_PROMPTS, None, False, None, {"packing": True, "max_length": 40},
                                  "nothing_trained", True),
}
CLEAN = {
    "messages_assistant_only_loss": (chat_records, "chatml_generation.jinja", {"assistant_only_loss": True}),
    "prompt_completion": (pc_records, None, {}),
    "conversational_prompt_completion": (conversational_pc, None, {}),
    "packing_bfd": (pc_records, None, {"packing": True, "max_length": 64}),
    "padding_free": (pc_records, None, {"padding_free": True, "max_length": None}),
}


@pytest.fixture(scope="module")
def trl_setup(sftgate_tiny_model, one_thread):
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    return sftgate_tiny_model


def trainer_for(model_dir, out, records, *, template=None, pad_is_eos=False, collator=None, callback=None,
                eval_records=None, **options):
    import datasets
    import peft
    import transformers
    import trl

    tok = transformers.AutoTokenizer.from_pretrained(model_dir)
    if template:
        tok.chat_template = template_text(template)
    if pad_is_eos:
        tok.pad_token = tok.eos_token
    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir)
    settings = {"max_steps": 1, "per_device_train_batch_size": 4, "report_to": [], "logging_steps": 1,
                "save_strategy": "no", "use_cpu": True, "max_length": 128, "disable_tqdm": True, **options}
    args = trl.SFTConfig(output_dir=str(out), **settings)
    return trl.SFTTrainer(
        model=model, args=args, train_dataset=datasets.Dataset.from_list(records), processing_class=tok,
        eval_dataset=datasets.Dataset.from_list(eval_records) if eval_records else None,
        peft_config=peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"),
        callbacks=[callback] if callback is not None else None,
        data_collator=collator(tok) if collator else None,
    )


def weights(trainer):
    return {name: p.detach().clone() for name, p in trainer.model.named_parameters()}


@pytest.mark.parametrize("name", sorted(FAILURES))
def test_failures_stop_before_the_first_step(trl_setup, tmp_path, cli, name):
    from sftgate.runners.integrations.callback import SftgateCallback, SftgateGateError

    records, template, pad_is_eos, collator, options, rule, dumped = FAILURES[name]
    callback = SftgateCallback(batches=2)
    trainer = trainer_for(trl_setup, tmp_path / "out", records(8), template=template, pad_is_eos=pad_is_eos,
                          collator=collator, callback=callback, **options)
    before = weights(trainer)
    with pytest.raises(SftgateGateError) as stopped:
        trainer.train()
    assert rule in stopped.value.rules
    assert trainer.state.global_step == 0
    after = weights(trainer)
    assert all((before[k] == after[k]).all() for k in before), "no weight moved: no optimizer step ran"
    report = json.loads((tmp_path / "out" / "sftgate" / "train_begin.json").read_text())
    assert rule in [f["rule"] for g in report["gates"] for f in g["findings"]]
    assert (tmp_path / "out" / "sftgate" / "train_begin.xml").is_file()
    if dumped:  # the dataset TRL prepared, saved as a trainer would dump it
        trainer.train_dataset.save_to_disk(str(tmp_path / "prepared"))
        tok_dir = tmp_path / "tok"
        trainer.processing_class.save_pretrained(tok_dir)
        result = cli("labels", str(tmp_path / "prepared"), "--tokenizer", str(tok_dir),
                     "--max-seq-len", str(options.get("max_length", 128)), "--format", "json")
        assert result.code == 1 and rule in result.rules()


@pytest.mark.parametrize("name", sorted(CLEAN))
def test_clean_setups_train(trl_setup, tmp_path, capsys, name):
    from sftgate.runners.integrations.callback import SftgateCallback

    records, template, options = CLEAN[name]
    callback = SftgateCallback(batches=2)
    trainer = trainer_for(trl_setup, tmp_path / "out", records(8), template=template, callback=callback, **options)
    trainer.train()
    assert trainer.state.global_step == 1
    assert callback.reports["train_begin"].passed
    assert "sftgate" not in capsys.readouterr().err, "nothing printed when there is nothing to say"


def test_a_clean_run_logs_the_pass_and_stop_rates(trl_setup, tmp_path, fixtures_dir):
    from sftgate.runners.integrations.callback import SftgateCallback

    callback = SftgateCallback(batches=1, cases=fixtures_dir / "data" / "clean_cases.jsonl",
                               output_schema=fixtures_dir / "data" / "output_schema.json", max_new_tokens=4)
    trainer = trainer_for(trl_setup, tmp_path / "out", chat_records(8), template="chatml_generation.jinja",
                          callback=callback, assistant_only_loss=True, max_steps=2, eval_strategy="steps",
                          eval_steps=2, per_device_eval_batch_size=4, eval_records=chat_records(4))
    trainer.train()
    assert trainer.state.global_step == 2
    logged = [entry for entry in trainer.state.log_history if "sftgate/pass_rate" in entry]
    assert logged and {"sftgate/pass_rate", "sftgate/eos_stop_rate"} <= set(logged[-1])
    assert 0.0 <= logged[-1]["sftgate/eos_stop_rate"] <= 1.0
    assert (tmp_path / "out" / "sftgate" / "evaluate-step2.json").is_file()


def test_stop_at_pass_rate_ends_training_early(trl_setup, tmp_path, fixtures_dir):
    from sftgate.runners.integrations.callback import SftgateCallback

    callback = SftgateCallback(batches=1, cases=fixtures_dir / "data" / "clean_cases.jsonl",
                               output_schema=fixtures_dir / "data" / "output_schema.json", max_new_tokens=2,
                               stop_at_pass_rate=0.0)
    trainer = trainer_for(trl_setup, tmp_path / "out", chat_records(8), template="chatml_generation.jinja",
                          callback=callback, assistant_only_loss=True, max_steps=4, eval_strategy="steps",
                          eval_steps=1, eval_records=chat_records(4))
    trainer.train()
    assert trainer.state.global_step == 1


def test_fail_on_drop_fails_when_the_pass_rate_falls(tmp_path):
    from types import SimpleNamespace

    from sftgate.gates.frame.report import Report
    from sftgate.runners.integrations.callback import SftgateCallback, SftgateGateError

    callback = SftgateCallback(fail_on_drop=0.2)
    args, report = SimpleNamespace(output_dir=str(tmp_path)), Report(command="eval")
    verdicts = [callback._judge_rates(report, {"sftgate/pass_rate": rate}, args, SimpleNamespace(global_step=step))
                for step, rate in ((1, 0.8), (2, 0.7), (3, 0.5))]
    assert [v["passed"] for v in verdicts] == [True, True, False]
    with pytest.raises(SftgateGateError):
        callback._act("evaluate", verdicts[-1])
    assert (tmp_path / "sftgate" / "evaluate-step3.json").is_file()


def test_warn_mode_trains_and_reports(trl_setup, tmp_path, capsys):
    from sftgate.runners.integrations.callback import SftgateCallback

    callback = SftgateCallback(batches=1, on_error="warn")
    trainer = trainer_for(trl_setup, tmp_path / "out", chat_records(8), callback=callback)
    trainer.train()
    assert trainer.state.global_step == 1
    assert "prompt_trained" in capsys.readouterr().err


def test_an_empty_adapter_save_stops_the_run(trl_setup, tmp_path):
    """What DeepSpeed ZeRO-3 saves without gathering: the LoRA tensors of the state dict are empty."""
    from sftgate.runners.integrations.callback import SftgateCallback, SftgateGateError

    callback = SftgateCallback(batches=1)
    trainer = trainer_for(trl_setup, tmp_path / "out", chat_records(8), template="chatml_generation.jinja",
                          callback=callback, assistant_only_loss=True, max_steps=3, save_strategy="steps",
                          save_steps=1)

    def partitioned(module, state_dict, prefix, local_metadata):
        for key in [k for k in state_dict if "lora_" in k]:
            state_dict[key] = state_dict[key].new_empty(0)
        return state_dict

    trainer.model._register_state_dict_hook(partitioned)
    with pytest.raises(SftgateGateError) as stopped:
        trainer.train()
    assert stopped.value.rules == ["adapter_incomplete"] and trainer.state.global_step == 1


def test_import_is_light():
    """At import: transformers' own TrainerCallback (loaded already by the training script) and sftgate's
    report types; the gates, trl and datasets only when an event runs."""
    import ast
    import inspect

    from sftgate.runners.integrations import callback

    tree = ast.parse(inspect.getsource(callback))
    top = {node.module if isinstance(node, ast.ImportFrom) else alias.name
           for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)
           for alias in (node.names if isinstance(node, ast.Import) else [None])}
    assert top == {"__future__", "inspect", "weakref", "pathlib", "typing", "transformers.trainer_callback",
                   "sftgate.gates.frame.report"}


def _rank(rank: int, init: str, out: str) -> None:
    import torch.distributed as dist

    from sftgate.runners.integrations.callback_gates import broadcast

    dist.init_process_group("gloo", rank=rank, world_size=2, init_method=init)
    got = broadcast({"passed": False, "rules": ["eos_masked"]} if rank == 0 else None)
    with open(f"{out}.{rank}", "w") as handle:
        handle.write(got["rules"][0])
    dist.destroy_process_group()


def test_the_verdict_reaches_every_rank(tmp_path):
    """torch.distributed (gloo, two processes): what rank 0 decided is what rank 1 gets."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    init, out = f"file://{tmp_path / 'rendezvous'}", str(tmp_path / "verdict")
    procs = [context.Process(target=_rank, args=(rank, init, out)) for rank in (0, 1)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0]
    assert [(tmp_path / f"verdict.{rank}").read_text() for rank in (0, 1)] == ["eos_masked", "eos_masked"]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["fail", "clean"])
def test_under_torchrun_the_gates_run_on_rank_0_and_every_rank_gets_the_verdict(sftgate_tiny_model, tmp_path, mode):
    """`torchrun --nproc_per_node 2` (gloo on CPU): a failing setup stops both ranks before the first
    step with rank 0's rules; a clean one trains on both; only rank 0 ran the gates and wrote reports."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    torchrun = Path(sys.executable).parent / "torchrun"
    if not torchrun.is_file():
        pytest.skip("torchrun is not installed next to this Python")
    script = Path(__file__).with_name("torchrun_callback.py")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_"))}
    env.update(OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", CUDA_VISIBLE_DEVICES="",
               PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[3]), env.get("PYTHONPATH", "")]))
    done = subprocess.run([str(torchrun), "--nproc_per_node", "2", str(script), str(sftgate_tiny_model), str(tmp_path),
                           mode], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert [r["reports"] > 0 for r in ranks] == [True, False], "the gates ran on rank 0 only"
    if mode == "fail":
        assert [r["steps"] for r in ranks] == [0, 0]
        assert all("prompt_trained" in r["rules"] for r in ranks), "rank 1 got rank 0's verdict"
    else:
        assert [(r["steps"], r["rules"]) for r in ranks] == [(2, []), (2, [])]
    assert list((tmp_path / "reports").glob("*.json")), "rank 0 wrote its reports"
