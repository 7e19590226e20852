"""The man pages (doc/*.scd) against the programs they describe, so that they cannot drift.

- mvirt(1): every command and verb of `mvirt --help` (walked down the groups) has an entry
  "*mvirt PATH*" in doc/mvirt.1.scd and the page has no entry for a command the CLI does not
  know; each entry lists exactly the options of `mvirt PATH --help` (long name, short name,
  metavar) and its aliases; the global options are the page's OPTIONS; every command line of
  the EXAMPLES names existing commands and options.
- mvirt-vmm(8): its OPTIONS are exactly those of `mvirt-vmm --help`, metavars included.
- mvirt-web(1): its OPTIONS are exactly those of `mvirt-web --help`, metavars included, each
  with the default the help gives; the start-up output it shows is what mvirt-web prints
  (token, paths, port and fingerprint aside); its command lines use existing options; the
  unit's ExecStart is the one it quotes; the exit statuses it gives are those mvirt-web ends
  with in those cases.
- mvirt-vmm.conf(5): its KEYS are exactly the settings of src/vmm/config.c's table, with the
  same metavars; every default that table's defaults give as a literal is stated; the page's
  example file passes `mvirt-vmm --check-config`.
- Each page renders: scdoc exits 0 without a message, and man(1) formats the result without a
  warning; the pages meson built (build_dir/doc) render too.

Markup conventions of the pages that this relies on: a command entry is a line starting with
"*mvirt COMMAND*" at column 0, its option entries are lines "\t*-x*, *--name* _METAVAR_"
(one tab), and option entries of mvirt-vmm(8) and mvirt-web(1) and keys of
mvirt-vmm.conf(5) are lines at column 0 in their sections.
"""

import os
import re
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from conftest import built_binary, free_tcp_port

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "doc"
PAGES = ("mvirt.1", "mvirt-web.1", "mvirt-vmm.8", "mvirt-vmm.conf.5")


@pytest.fixture
def mvirt(cli_binary):
    return str(cli_binary)


@pytest.fixture
def vmm(vmm_binary):
    return str(vmm_binary)


@pytest.fixture
def web(build_dir):
    return str(built_binary(build_dir, "src/web/mvirt-web"))


def run(*argv, **kw):
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=30, **kw)


# ---- what the programs say -------------------------------------------------------------------

def help_text(mvirt, *path) -> str:
    r = run(mvirt, *path, "--help")
    assert r.returncode == 0, f"mvirt {' '.join(path)} --help: {r.stderr}"
    return r.stdout


def sections(text) -> dict:
    """{"Commands": [lines], "Options": [lines], "Global options": [lines], ...}: the blocks of a
    help text under a line "Heading:" or "Heading (...):" at column 0."""
    out, cur = {}, None
    for line in text.splitlines():
        m = re.match(r"^([A-Z][A-Za-z ]*?)(?: \(.*\))?:$", line)
        if m:
            cur = out.setdefault(m.group(1), [])
        elif not line:
            cur = None
        elif cur is not None:
            cur.append(line)
    return out


def help_children(text) -> dict:
    """{name: alias or None} of a group's help (the section named by the child noun)."""
    kids = {}
    for head, lines in sections(text).items():
        if head in ("Options", "Global options"):
            continue
        for line in lines:
            m = re.match(r"^  ([a-z][a-z0-9-]*)(?: \(([a-z0-9-]+)\))?  ", line)
            if m:
                kids[m.group(1)] = m.group(2)
    return kids


OPTION_LINE = re.compile(r"^ +(?:-([A-Za-z0-9]), )?--([a-z0-9-]+)(?: (\S+))?(?:  |$)")


def help_options(lines) -> dict:
    """{long name: (short or None, metavar or None)} of option lines of a help text."""
    opts = {}
    for line in lines:
        m = OPTION_LINE.match(line)
        if m:
            opts[m.group(2)] = (m.group(1), m.group(3))
    return opts


def cli_tree(mvirt) -> dict:
    """{("volume", "create"): {"alias": ..., "options": {...}}, ...} for every leaf command, and
    {("volume",): {"alias": ..., "group": True}} for groups: the CLI's command table as its help
    prints it."""
    tree = {}

    def walk(path, alias):
        text = help_text(mvirt, *path)
        kids = help_children(text)
        if kids:
            if path:
                tree[path] = {"alias": alias, "group": True}
            for name, a in kids.items():
                walk(path + (name,), a)
        else:
            tree[path] = {"alias": alias, "options": help_options(sections(text).get("Options", []))}

    walk((), None)
    return tree


def vmm_options(vmm) -> dict:
    r = run(vmm, "--help")
    assert r.returncode == 0, r.stderr
    # "  -l, --listen ADDR   help", "      --max-connections-per-user N help": the metavar is
    # the word one space after the name (the help is padded off by two or more, or follows a
    # long left part after one: then the metavar is still the first word)
    opts = {}
    for line in r.stdout.splitlines():
        m = re.match(r"^  (?:-([A-Za-z0-9]), |    )--([a-z0-9-]+)(?: (\S+))?", line)
        if m:
            meta = m.group(3)
            opts[m.group(2)] = (m.group(1), meta)
    return opts


def config_settings() -> dict:
    """{name: metavar} of the settings table of src/vmm/config.c (the config-file keys)."""
    src = (REPO / "src" / "vmm" / "config.c").read_text()
    table = re.search(r"static const struct setting settings\[\] = \{(.*?)\n\};", src, re.S)
    assert table, "no settings table in src/vmm/config.c"
    found = re.findall(r'\{"([a-z0-9-]+)",\s*(?:\'.\'|0),\s*SETTING_\w+,\s*offsetof\(struct '
                       r'daemon_config,\s*(\w+)\),\s*"([^"]*)"', table.group(1))
    assert found, "cannot read the settings table of src/vmm/config.c"
    return {name: {"field": field, "metavar": meta} for name, field, meta in found}


def config_literal_defaults() -> dict:
    """{field: [values]} of the defaults config.c sets as whole literals (not built from the
    environment): set_default(&cfg->FIELD, "VALUE" or MACRO, NULL)."""
    src = (REPO / "src" / "vmm" / "config.c").read_text()
    macros = dict(re.findall(r'#define (\w+) "([^"]*)"', src))
    out = {}
    for field, lit, macro in re.findall(r'set_default\(&cfg->(\w+),\s*(?:"([^"]*)"|([A-Z_]+)),\s*NULL\)',
                                        src):
        value = lit if not macro else macros.get(macro)
        assert value is not None, f"config.c: default of {field}: unknown macro {macro}"
        out.setdefault(field, []).append(value)
    return out


# ---- what the pages say ----------------------------------------------------------------------

def page(name) -> str:
    return (DOC / f"{name}.scd").read_text()


def plain(s: str) -> str:
    """scdoc markup removed: *bold*, _underline_, backslash escapes."""
    return re.sub(r"(?<![A-Za-z0-9])[*_]|[*_](?![A-Za-z0-9])", "", s).replace("\\", "")


def page_sections(text) -> dict:
    """{"OPTIONS": text, ...}: the "# HEADING" sections of an scdoc page."""
    out, cur, literal = {}, None, False
    for line in text.splitlines():
        if line.startswith("```"):
            literal = not literal
        if not literal and re.match(r"^# [A-Z][A-Z ]*$", line):
            cur = out.setdefault(line[2:].strip(), [])
        elif cur is not None:
            cur.append(line)
    return {k: "\n".join(v) for k, v in out.items()}


def man_commands(text) -> dict:
    """{("volume", "create"): block text} of doc/mvirt.1.scd: each "*mvirt PATH*" entry at
    column 0 and the indented lines under it."""
    out, cur = {}, None
    for line in text.splitlines():
        m = re.match(r"^\*mvirt ([a-z][a-z0-9 -]*)\*", line)
        if m:
            cur = out.setdefault(tuple(m.group(1).split()), [])
            continue
        if line and not line.startswith("\t"):
            cur = None
        if cur is not None:
            cur.append(line)
    return {k: "\n".join(v) for k, v in out.items()}


MAN_OPTION = re.compile(r"^(?:\*-([A-Za-z0-9])\*, )?\*--([a-z0-9-]+)\*(?: (\S.*))?$")


def man_options(block, indent) -> dict:
    """{long: (short, metavar)} of the option entries of a block: lines with exactly indent
    tabs, "*-x*, *--name* _META_"."""
    opts = {}
    for line in block.splitlines():
        if not line.startswith("\t" * indent) or line.startswith("\t" * (indent + 1)):
            continue
        m = MAN_OPTION.match(line[indent:])
        if m:
            opts[m.group(2)] = (m.group(1), plain(m.group(3)) if m.group(3) else None)
    return opts


def man_aliases(block) -> set:
    return set(re.findall(r"Alias(?: of the group)?: \*([a-z0-9-]+)\*", block))


# ---- mvirt(1) --------------------------------------------------------------------------------

def test_every_command_is_documented_and_only_those(mvirt):
    tree = cli_tree(mvirt)
    documented = man_commands(page("mvirt.1"))
    leaves = {p for p, e in tree.items() if not e.get("group")}
    missing = sorted(" ".join(p) for p in leaves - set(documented))
    unknown = sorted(" ".join(p) for p in set(documented) - leaves)
    assert not missing, f"commands of `mvirt --help` missing from doc/mvirt.1.scd: {missing}"
    assert not unknown, f"doc/mvirt.1.scd documents commands mvirt does not have: {unknown}"


def test_every_option_of_every_command_is_documented(mvirt):
    tree = cli_tree(mvirt)
    documented = man_commands(page("mvirt.1"))
    problems = []
    for path, e in sorted(tree.items()):
        if e.get("group") or path not in documented:
            continue  # a missing command is the test above's
        name = " ".join(path)
        in_page = man_options(documented[path], 1)
        for opt, (short, meta) in e["options"].items():
            if opt not in in_page:
                problems.append(f"mvirt {name}: --{opt} not documented")
            elif in_page[opt] != (short, meta):
                problems.append(f"mvirt {name} --{opt}: the CLI has short/metavar "
                                f"{(short, meta)}, the page {in_page[opt]}")
        for opt in set(in_page) - set(e["options"]):
            problems.append(f"mvirt {name}: the page documents --{opt}, the CLI has none")
    assert not problems, "\n".join(problems)


def test_aliases_are_documented(mvirt):
    tree = cli_tree(mvirt)
    text = page("mvirt.1")
    documented = man_commands(text)
    problems = []
    for path, e in sorted(tree.items()):
        if not e["alias"]:
            continue
        name = " ".join(path)
        if e.get("group"):
            # a group's alias is stated in its section's introduction
            if f"Alias of the group: *{e['alias']}*" not in text:
                problems.append(f"mvirt {name}: alias {e['alias']} not documented")
        elif path in documented and e["alias"] not in man_aliases(documented[path]):
            problems.append(f"mvirt {name}: alias {e['alias']} not documented")
    for path, block in documented.items():
        e = tree.get(path)
        for a in man_aliases(block):
            if e and e["alias"] != a:
                problems.append(f"mvirt {' '.join(path)}: the page gives alias {a}, "
                                f"the CLI {e['alias']}")
    assert not problems, "\n".join(problems)


def test_global_options_are_the_pages_options(mvirt):
    globals_ = help_options(sections(help_text(mvirt)).get("Global options", []))
    assert "server" in globals_, "cannot read the global options of `mvirt --help`"
    in_page = man_options(page_sections(page("mvirt.1"))["OPTIONS"], 0)
    assert in_page == globals_


def test_examples_use_existing_commands_and_options(mvirt):
    tree = cli_tree(mvirt)
    examples = page_sections(page("mvirt.1"))["EXAMPLES"]
    globals_ = help_options(sections(help_text(mvirt)).get("Global options", []))
    aliases = {}
    for path, e in tree.items():
        if e["alias"]:
            aliases[path[:-1] + (e["alias"],)] = path
    problems, n = [], 0
    # one command per line; continuation lines (ending in \) joined
    joined = re.sub(r"\\\\?\n\s*", " ", examples)
    for line in joined.splitlines():
        for cmd in re.split(r"\|", line):
            words = cmd.split("#")[0].split()
            if not words or words[0] != "mvirt":
                continue
            n += 1
            path, opts, i = (), [], 1
            while i < len(words):
                w = words[i]
                if w.startswith("-"):
                    opts.append(w)
                    name = w.lstrip("-").split("=")[0]
                    long_ = next((o for o, (s, _) in globals_.items() if name in (o, s)), None)
                    if long_ and globals_[long_][1] and "=" not in w:
                        i += 1
                elif path in tree and not tree[path].get("group") and path:
                    pass  # a positional argument
                else:
                    nxt = path + (w,)
                    path = aliases.get(nxt, nxt)
                    if path not in tree:
                        problems.append(f"{cmd.strip()}: no command 'mvirt {' '.join(path)}'")
                        break
                i += 1
            else:
                e = tree.get(path, {})
                known = dict(globals_, **e.get("options", {}))
                for o in opts:
                    name = o.lstrip("-").split("=")[0]
                    if not any(name in (lo, s) for lo, (s, _) in known.items()):
                        problems.append(f"{cmd.strip()}: mvirt {' '.join(path)} has no option {o}")
    assert n >= 5, "cannot find the EXAMPLES of doc/mvirt.1.scd"
    assert not problems, "\n".join(problems)


def test_exit_statuses_and_environment_match_the_cli(mvirt):
    root = help_text(mvirt)
    sec = page_sections(page("mvirt.1"))
    for code in re.findall(r"(\d) [a-z]", root.split("Exit status:")[1]):
        assert f"*{code}*" in sec["EXIT STATUS"], f"exit status {code} not documented"
    for var in set(re.findall(r"\$([A-Z_]+)", root)):
        assert f"*{var}*" in sec["ENVIRONMENT"], f"${var} not in ENVIRONMENT"


# ---- mvirt-vmm(8) and mvirt-vmm.conf(5) ------------------------------------------------------

def test_daemon_options_are_documented_and_only_those(vmm):
    opts = vmm_options(vmm)
    assert "listen" in opts and "help" in opts, "cannot read `mvirt-vmm --help`"
    in_page = man_options(page_sections(page("mvirt-vmm.8"))["OPTIONS"], 0)
    missing = sorted(set(opts) - set(in_page))
    unknown = sorted(set(in_page) - set(opts))
    assert not missing, f"options of `mvirt-vmm --help` missing from doc/mvirt-vmm.8.scd: {missing}"
    assert not unknown, f"doc/mvirt-vmm.8.scd documents options mvirt-vmm lacks: {unknown}"
    wrong = {o: (opts[o], in_page[o]) for o in opts if opts[o] != in_page[o]}
    assert not wrong, f"short name or metavar differ (--help, page): {wrong}"


def conf_keys() -> dict:
    """{key: (metavar, block)} of the KEYS section of mvirt-vmm.conf.5.scd."""
    out, cur = {}, None
    for line in page_sections(page("mvirt-vmm.conf.5"))["KEYS"].splitlines():
        m = re.match(r"^\*([a-z0-9-]+)\* = (\S.*)$", line)
        if m:
            cur = [line]
            out[m.group(1)] = (plain(m.group(2)), cur)
        elif line.startswith("\t") and cur is not None:
            cur.append(line)
    return {k: (meta, "\n".join(block)) for k, (meta, block) in out.items()}


def test_config_keys_are_the_settings_of_config_c():
    settings = config_settings()
    keys = conf_keys()
    assert sorted(keys) == sorted(settings), "KEYS of doc/mvirt-vmm.conf.5.scd vs config.c"
    wrong = {k: (settings[k]["metavar"], keys[k][0]) for k in keys
             if settings[k]["metavar"] != keys[k][0]}
    assert not wrong, f"metavars differ (config.c, page): {wrong}"


def test_config_defaults_are_stated():
    settings = config_settings()
    by_field = {s["field"]: name for name, s in settings.items()}
    keys = conf_keys()
    defaults = config_literal_defaults()
    assert "hypervisor" in defaults and "group" in defaults, "cannot read config.c's defaults"
    problems = []
    for field, values in defaults.items():
        key = by_field.get(field)
        if key is None or key not in keys:
            continue  # a key missing from the page is test_config_keys_...'s to report
        block = keys[key][1]
        default = plain(block.split("Default:", 1)[1]) if "Default:" in block else ""
        for v in values:
            if not re.search(r"(?<![\w/.-])" + re.escape(v) + r"(?![\w/-]|\.\w)", default):
                problems.append(f"{key}: default {v!r} not stated (page: {default.strip()!r})")
    assert not problems, "\n".join(problems)


def test_config_example_passes_check_config(vmm, tmp_path):
    text = page_sections(page("mvirt-vmm.conf.5"))["EXAMPLE"]
    example = re.search(r"```\n(.*?)```", text, re.S)
    assert example, "no example file in doc/mvirt-vmm.conf.5.scd"
    conf = tmp_path / "mvirt-vmm.conf"
    conf.write_text(example.group(1))
    r = run(vmm, "--check-config", "--config", str(conf))
    assert r.returncode == 0, r.stderr
    used = {plain(line.split("=")[0].strip()).replace("_", "-")
            for line in example.group(1).splitlines() if "=" in line and not line.startswith("#")}
    assert used <= set(config_settings()), used


def test_config_check_output_in_the_page_is_what_the_daemon_says(vmm, tmp_path):
    """The page shows --check-config reporting a misspelt key and a bad count: the daemon must
    say exactly that for such a file."""
    text = page_sections(page("mvirt-vmm.conf.5"))["EXAMPLE"]
    shown = re.findall(r"```\n(\$ mvirt-vmm .*?)```", text, re.S)
    assert shown, "no --check-config run in doc/mvirt-vmm.conf.5.scd"
    lines = shown[0].splitlines()
    path = lines[0].split("--config ")[1].strip()
    conf = tmp_path / "mvirt-vmm.conf"
    content = {}
    for line in lines[1:-1]:
        m = re.match(r"^mvirt-vmm: \S+:(\d+): (.*)$", line)
        assert m, line
        n, what = int(m.group(1)), m.group(2)
        if what.startswith("unknown key"):
            content[n] = re.search(r"'(.*)'", what).group(1) + " = /usr/bin/x"
        else:
            key, value = re.match(r"^([a-z-]+): '(.*?)'", what).groups()
            content[n] = f"{key} = {value}"
    conf.write_text("".join(content.get(i, "# filler") + "\n" for i in range(1, max(content) + 1)))
    r = run(vmm, "--check-config", "--config", str(conf))
    assert r.returncode == 1, r.stderr
    assert r.stderr.replace(str(conf), path).splitlines() == lines[1:]


# ---- mvirt-web(1) ----------------------------------------------------------------------------

def web_help(web) -> dict:
    """{long: {"short", "metavar", "help"}} of `mvirt-web --help`: lines "  --name META   help"
    (continued on lines indented further), and "  -h, --help, --version", where a short name
    belongs to the long name after it."""
    r = run(web, "--help")
    assert r.returncode == 0, r.stderr
    opts, cur = {}, None
    for line in r.stdout.splitlines():
        m = re.match(r"^  (-[^ ].*?)(?:  +(\S.*))?$", line)
        if m:
            cur, short = [m.group(2) or ""], None
            for item in m.group(1).split(", "):
                words = item.split(" ")
                if re.fullmatch(r"-[A-Za-z0-9]", words[0]):
                    short = words[0][1]
                    continue
                assert words[0].startswith("--") and len(words) <= 2, f"--help: {line!r}"
                opts[words[0][2:]] = {"short": short, "metavar": words[1] if len(words) > 1
                                      else None, "help": cur}
                short = None
        elif re.match(r"^ {3,}\S", line) and cur is not None:
            cur.append(line.strip())
        else:
            cur = None
    return {k: dict(v, help=" ".join(v["help"])) for k, v in opts.items()}


def option_blocks(section) -> dict:
    """{long: entry text} of the column-0 option entries of a page's section."""
    out, cur = {}, None
    for line in section.splitlines():
        m = MAN_OPTION.match(line)
        if m:
            cur = out.setdefault(m.group(2), [line])
        elif line and not line.startswith("\t"):
            cur = None
        elif cur is not None:
            cur.append(line)
    return {k: "\n".join(v) for k, v in out.items()}


def web_page_commands(text) -> list:
    """The argument lists of the "mvirt-web ..." command lines of the page's literal blocks
    (continuation lines joined; a "$ " prompt dropped)."""
    out = []
    for block in re.findall(r"```\n(.*?)```", text, re.S):
        for line in re.sub(r"\\\\?\n\s*", " ", block).splitlines():
            words = line.split()
            if words[:1] == ["$"]:
                words = words[1:]
            if words[:1] == ["mvirt-web"]:
                out.append(words[1:])
    return out


def test_web_options_are_documented_and_only_those(web):
    opts = {k: (v["short"], v["metavar"]) for k, v in web_help(web).items()}
    assert "listen" in opts and "help" in opts and "version" in opts, \
        f"cannot read `mvirt-web --help`: {opts}"
    in_page = man_options(page_sections(page("mvirt-web.1"))["OPTIONS"], 0)
    missing = sorted(set(opts) - set(in_page))
    unknown = sorted(set(in_page) - set(opts))
    assert not missing, f"options of `mvirt-web --help` missing from doc/mvirt-web.1.scd: {missing}"
    assert not unknown, f"doc/mvirt-web.1.scd documents options mvirt-web lacks: {unknown}"
    wrong = {o: (opts[o], in_page[o]) for o in opts if opts[o] != in_page[o]}
    assert not wrong, f"short name or metavar differ (--help, page): {wrong}"


def test_web_defaults_are_stated(web):
    """Each "(default X)" of `mvirt-web --help` is the "Default:" of the option's entry; the
    assets' default depends on the build's prefix: the page states it for /usr."""
    blocks = option_blocks(page_sections(page("mvirt-web.1"))["OPTIONS"])
    problems, n = [], 0
    for name, o in web_help(web).items():
        m = re.search(r"\(default ([^)\s]+)\)", o["help"])
        if not m or name not in blocks:
            continue  # a missing entry is the test above's
        n += 1
        value = m.group(1)
        if name == "assets":
            value = re.sub(r"^.*/share/", "/usr/share/", value)
        stated = plain(blocks[name].split("Default:", 1)[1]) if "Default:" in blocks[name] else ""
        if not re.search(r"(?<![\w/.-])" + re.escape(value) + r"(?![\w/-])", stated):
            problems.append(f"--{name}: default {value!r} not stated (page: {stated.strip()!r})")
    assert n >= 4, "cannot read the defaults of `mvirt-web --help`"
    assert not problems, "\n".join(problems)


def test_web_page_commands_use_existing_options(web):
    opts = web_help(web)
    cmds = web_page_commands(page("mvirt-web.1"))
    assert len(cmds) >= 8, "cannot find the command lines of doc/mvirt-web.1.scd"
    problems = []
    for args in cmds:
        i = 0
        while i < len(args):
            a = args[i]
            name = a[2:].split("=")[0] if a.startswith("--") else None
            if name not in opts:
                problems.append(f"mvirt-web {' '.join(args)}: {a!r} is not an option")
                break
            i += 2 if opts[name]["metavar"] and "=" not in a else 1
        else:
            if i > len(args):
                problems.append(f"mvirt-web {' '.join(args)}: {args[-1]} needs a value")
    assert not problems, "\n".join(problems)


def test_web_unit_command_is_the_pages():
    unit = (REPO / "systemd" / "mvirt-web.service").read_text()
    m = re.search(r"^ExecStart=@BINDIR@/(.*)$", unit, re.M)
    assert m, "no ExecStart in systemd/mvirt-web.service"
    shown = " ".join(plain(page_sections(page("mvirt-web.1"))["SYSTEMD"]).split())
    assert m.group(1) in shown, f"the SYSTEMD section does not quote {m.group(1)!r}"


FINGERPRINT = re.compile(r"[0-9A-F]{2}(?::(?:[0-9A-F]{2}|\.\.\.))+")


def web_first_start(web, tmp_path, args) -> list:
    """What mvirt-web prints on standard output at a first start with args, up to its "serving"
    line, written as the page writes it: its port 8080, its state directory
    /var/lib/mvirt-web, the token TOKEN, a fingerprint FP."""
    port = free_tcp_port()
    tmp_path.mkdir(parents=True, exist_ok=True)
    state = tmp_path / "state"
    p = subprocess.Popen([web, *args, "--listen", f"127.0.0.1:{port}", "--state-dir", str(state),
                          "--assets", str(tmp_path)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    try:
        for line in p.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("mvirt-web: serving"):
                break
    finally:
        p.terminate()
        _, err = p.communicate(timeout=30)
    assert lines and lines[-1].startswith("mvirt-web: serving"), \
        f"mvirt-web {' '.join(args)} did not start: {lines} {err}"
    out = []
    for line in lines:
        line = line.replace(f"127.0.0.1:{port}", "127.0.0.1:8080")
        line = line.replace(str(state), "/var/lib/mvirt-web")
        line = re.sub(r"^(mvirt-web: login token: )\S+$", r"\1TOKEN", line)
        out.append(FINGERPRINT.sub("FP", line))
    return out


def test_web_start_output_is_the_pages(web, tmp_path):
    """The page shows what a first start prints (plain, and with --tls): mvirt-web, started
    with the same options (and its own port and state directory), prints exactly that."""
    text = page("mvirt-web.1")
    shown = re.findall(r"```\n\$ mvirt-web ([^\n]*)\n(.*?)```", text, re.S)
    assert len(shown) >= 2, "no start-up output in doc/mvirt-web.1.scd"
    for i, (args, output) in enumerate(shown):
        want = [FINGERPRINT.sub("FP", line) for line in output.splitlines()]
        got = web_first_start(web, tmp_path / str(i), args.split())
        assert got == want, f"mvirt-web {args}"


def test_web_exit_statuses_are_the_pages(web, tmp_path):
    """Each case of the page's EXIT STATUS, run: mvirt-web ends with the status whose entry
    names the case."""
    entries, cur = {}, None
    for line in page_sections(page("mvirt-web.1"))["EXIT STATUS"].splitlines():
        m = re.match(r"^\*(\d+)\*$", line)
        if m:
            cur = entries.setdefault(int(m.group(1)), [])
        elif line.startswith("\t") and cur is not None:
            cur.append(line.strip())
    entries = {k: plain(" ".join(v)) for k, v in entries.items()}
    assert sorted(entries) == [0, 1, 2], entries
    bad = str(tmp_path / "bad.pem")
    Path(bad).write_text("not PEM\n")
    half = tmp_path / "half"
    (half / "tls").mkdir(parents=True)
    (half / "tls" / "cert.pem").write_text("")
    state = ["--state-dir", str(tmp_path / "state")]
    cases = [  # (arguments, what the page's entry says of them)
        (["--help"], "--help"),
        (["--version"], "--version"),
        (["--no-such-option"], "an unknown option"),
        (["extra"], "an extra argument"),
        (["--listen", "nonsense"], "a --listen value that is not ADDR:PORT"),
        ([*state, "--listen", "web.example:8080"], "ADDR is not an IP address"),
        # TEST-NET-1 (RFC 5737): never an address of this host; nothing is sent
        ([*state, "--listen", f"192.0.2.10:{free_tcp_port()}"],
         "the address is not one of this host's"),
        (["--tls-cert", bad], "--tls-cert without --tls-key or the reverse"),
        (["--tls-key", bad], "--tls-cert without --tls-key or the reverse"),
        ([*state, "--tls-cert", bad, "--tls-key", bad], "pair that does not parse"),
        (["--state-dir", str(half), "--tls", "--listen", f"127.0.0.1:{free_tcp_port()}"],
         "only one of tls/cert.pem and tls/key.pem exists"),
    ]
    with socket.socket() as taken:  # a port some program listens on
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        cases.append(([*state, "--listen", f"127.0.0.1:{taken.getsockname()[1]}"],
                      "the port cannot be bound"))
        wrong = []
        for args, says in cases:
            want = [code for code, text in entries.items() if says in text]
            if len(want) != 1:
                wrong.append(f"EXIT STATUS: {says!r} is in the entries {want}, not in one")
                continue
            r = run(web, *args)
            if r.returncode != want[0]:
                wrong.append(f"mvirt-web {' '.join(args)}: exit status {r.returncode}, the "
                             f"page says {want[0]} ({says}; {r.stderr.strip()})")
    assert not wrong, "\n".join(wrong)


# ---- rendering -------------------------------------------------------------------------------

def render(source: Path, out: Path):
    with open(source, "rb") as f:
        r = subprocess.run(["scdoc"], stdin=f, capture_output=True, timeout=30)
    assert r.returncode == 0, f"scdoc {source.name}: {r.stderr.decode()}"
    assert not r.stderr, f"scdoc {source.name}: {r.stderr.decode()}"
    out.write_bytes(r.stdout)


def man_format(path: Path) -> str:
    env = dict(os.environ, MANWIDTH="80", MAN_KEEP_FORMATTING="0")
    r = run("man", "--warnings=all", "-l", str(path), env=env)
    assert r.returncode == 0, f"man -l {path}: {r.stderr}"
    assert not r.stderr.strip(), f"man -l {path} warns: {r.stderr}"
    return re.sub(r".\x08", "", r.stdout)  # overstrike bold and underline


@pytest.mark.parametrize("name", PAGES)
def test_page_renders(name, tmp_path):
    if not shutil.which("scdoc"):
        pytest.fail("scdoc is not installed (scripts/packages.txt)")
    out = tmp_path / name
    render(DOC / f"{name}.scd", out)
    text = out.read_text()
    assert text.startswith(".\\\" Generated by scdoc"), text[:80]
    if shutil.which("man"):
        shown = man_format(out)
        assert "NAME" in shown and name.rsplit(".", 1)[0] in shown


@pytest.mark.parametrize("name", PAGES)
def test_built_page_renders(name, build_dir):
    built = build_dir / "doc" / name
    if not built.exists():
        pytest.fail(f"{built} not built (meson builds the man pages when scdoc is installed)")
    assert built.read_text().startswith(".\\\" Generated by scdoc")
    if shutil.which("man"):
        man_format(built)
