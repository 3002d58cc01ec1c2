import ml_collections
import pytest

from nips23jax.core.config import ConfigError, apply_overrides, config_fingerprint, load_config


def _base():
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.name = "x"
    c.flag = False
    c.sizes = (1, 2)
    c.opt = ml_collections.ConfigDict({"lr": 1e-3, "steps": 10, "schedule": None})
    return c


def test_overrides_parse_and_keep_types():
    c = apply_overrides(
        _base(),
        ["opt.lr=3e-4", "opt.steps=20", "flag=true", "name=hello world", "sizes=(4, 5, 6)", "opt.lr=2",
         "opt.schedule=cosine", "opt.steps=1e2"],
    )
    assert c.opt.lr == 2.0 and isinstance(c.opt.lr, float)
    assert c.opt.steps == 100 and isinstance(c.opt.steps, int)
    assert c.flag is True and c.name == "hello world" and c.sizes == (4, 5, 6)
    assert c.opt.schedule == "cosine"


def test_overrides_do_not_mutate_input():
    base = _base()
    apply_overrides(base, ["seed=3"])
    assert base.seed == 0


@pytest.mark.parametrize(
    "override, match",
    [
        ("opt.lrr=1", r"unknown config key 'opt.lrr' \(no 'lrr' under opt; known: lr, schedule, steps\)"),
        ("nope.lr=1", "unknown config key 'nope.lr'"),
        ("seed.x=1", "unknown config key 'seed.x'"),
        ("opt.steps=abc", "bad value 'abc' for config key 'opt.steps': expected int"),
        ("opt.steps=1.5", "expected int"),
        ("flag=2", "expected bool"),
        ("opt=3", "is a group"),
        ("seed", "malformed override 'seed'"),
        ("=3", "malformed override"),
        ("name=None", "expected str"),  # a literal, not a string: was stored as "None"
    ],
)
def test_override_errors(override, match):
    with pytest.raises(ConfigError, match=match):
        apply_overrides(_base(), [override])


def _with_placeholder():
    c = _base()
    c.opt.limit = ml_collections.config_dict.placeholder(int)  # a typed None default
    return c


def test_typed_placeholder_overrides():
    assert apply_overrides(_with_placeholder(), ["opt.limit=7"]).opt.limit == 7
    assert apply_overrides(_with_placeholder(), ["opt.limit=7", "opt.limit=None"]).opt.limit is None
    assert apply_overrides(_with_placeholder(), ["opt.limit=2e1"]).opt.limit == 20
    for bad in ("opt.limit=abc", "opt.limit=1.5", "opt.limit=[1]"):
        with pytest.raises(ConfigError, match=r"for config key 'opt.limit': expected int or None"):
            apply_overrides(_with_placeholder(), [bad])
    # an untyped None default still takes any value
    assert apply_overrides(_base(), ["opt.schedule=3"]).opt.schedule == 3


def test_typed_placeholder_count_check(tmp_path):
    f = tmp_path / "c.py"
    f.write_text(
        "import ml_collections\n"
        "def get_config(arg=None):\n"
        "    c = ml_collections.ConfigDict()\n"
        "    c.num_files = ml_collections.config_dict.placeholder(int)\n"
        "    return c\n"
    )
    assert load_config(str(f)).num_files is None
    assert load_config(str(f), overrides=["num_files=3"]).num_files == 3
    with pytest.raises(ConfigError, match=r"'num_files' must be None or an int >= 1, got 0"):
        load_config(str(f), overrides=["num_files=0"])


def test_data_constrained_num_files_is_typed():
    assert load_config("data_constrained").data.num_files is None
    assert load_config("data_constrained", overrides=["data.num_files=5"]).data.num_files == 5
    with pytest.raises(ConfigError, match="expected int or None"):
        load_config("data_constrained", overrides=["data.num_files=all"])


def test_load_builtin_and_file(tmp_path):
    full, quick = load_config("tiny_lm"), load_config("tiny_lm", quick=True)
    assert quick.train.num_steps < full.train.num_steps
    assert load_config("tiny_lm", overrides=["seed=4"]).seed == 4
    with pytest.raises(AttributeError):
        full.new_key = 1  # locked
    f = tmp_path / "my.py"
    f.write_text("import ml_collections\ndef get_config(arg=None):\n    return ml_collections.ConfigDict({'a': arg})\n")
    assert load_config(str(f), quick=True).a == "quick"


@pytest.mark.parametrize(
    "setup, match",
    [
        (lambda p: "no_such_config", "no built-in config named 'no_such_config'"),
        (lambda p: str(p / "missing.py"), "does not exist"),
        (lambda p: (p / "a.py").write_text("x = 1\n") and str(p / "a.py"), "defines no get_config"),
        (lambda p: (p / "b.py").write_text("1/0\n") and str(p / "b.py"), "failed to load: ZeroDivisionError"),
        (lambda p: (p / "c.py").write_text("def get_config(a=None): return {}\n") and str(p / "c.py"), "ConfigDict"),
    ],
)
def test_load_errors(tmp_path, setup, match):
    with pytest.raises(ConfigError, match=match):
        load_config(setup(tmp_path))


def test_fingerprint_is_stable_and_sensitive():
    a, b = _base(), _base()
    assert config_fingerprint(a) == config_fingerprint(b)
    assert config_fingerprint(apply_overrides(a, ["seed=1"])) != config_fingerprint(a)
    assert config_fingerprint(apply_overrides(a, ["seed=1"]), exclude=["seed"]) == config_fingerprint(a, exclude=["seed"])


from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@given(st.integers(-10**12, 10**12), st.floats(allow_nan=False, allow_infinity=False), st.booleans())
def test_override_values_roundtrip(i, f, b):
    c = apply_overrides(_base(), [f"seed={i}", f"opt.lr={f!r}", f"flag={b}"])
    assert c.seed == i and c.opt.lr == f and c.flag is b


def test_list_elements_and_counts_are_checked(tmp_path):
    path = tmp_path / "c.py"
    path.write_text(
        "import ml_collections\n"
        "def get_config(arg=None):\n"
        "    c = ml_collections.ConfigDict()\n"
        "    c.sides = [4, 8]\n"
        "    c.lrs = [0.1, 0.2]\n"
        "    c.train = ml_collections.ConfigDict()\n"
        "    c.train.num_steps = 10\n"
        "    c.train.warmup_steps = 2\n"
        "    c.train.seed = 0\n"
        "    return c\n"
    )
    cfg = load_config(path, overrides=["lrs=[1, 0.5]", "sides=[2.0]", "train.warmup_steps=0", "train.seed=0"])
    assert list(cfg.lrs) == [1.0, 0.5] and list(cfg.sides) == [2]  # ints accepted for floats; 2.0 is an int
    with pytest.raises(ConfigError, match=r"bad value 'x' for config key 'sides\[0\]': expected int"):
        load_config(path, overrides=["sides=['x']"])
    with pytest.raises(ConfigError, match=r"config key 'train.num_steps' must be an int >= 1, got 0"):
        load_config(path, overrides=["train.num_steps=0"])
    with pytest.raises(ConfigError, match=r"config key 'sides' must be a non-empty list of ints >= 1"):
        load_config(path, overrides=["sides=[0, 4]"])
