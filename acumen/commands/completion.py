"""``acumen completion bash|zsh``: a shell completion script written from the command's own
parser (subcommands, their options, choices; dataset paths complete as files), so it can
never list an option that does not exist. No dependency: the scripts are plain shell.

    eval "$(acumen completion bash)"      # in ~/.bashrc
    eval "$(acumen completion zsh)"       # in ~/.zshrc, after compinit
"""

from __future__ import annotations

import argparse
import re
from typing import Any

NAMES = ("completion",)
SHELLS = ("bash", "zsh")
#: Options whose value is a path (completed as files; ``-/``: folders).
_FOLDERS = {"--cache", "--output"}
_FILES = {"--out"}


def add_parsers(commands: Any) -> None:
    """Add ``completion`` to the ``acumen`` parser."""
    completion = commands.add_parser(
        "completion",
        help='print a completion script: eval "$(acumen completion bash)" in ~/.bashrc '
        '(zsh: eval "$(acumen completion zsh)" in ~/.zshrc)',
    )
    completion.add_argument("shell", choices=SHELLS)


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Print the script for ``args.shell``."""
    print(bash_script(parser) if args.shell == "bash" else zsh_script(parser))
    return 0


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _helps(parser: argparse.ArgumentParser) -> dict[str, str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return {a.dest: a.help or "" for a in action._choices_actions}
    return {}


def _options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.option_strings]


def _positionals(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if not a.option_strings]


def _takes_value(action: argparse.Action) -> bool:
    return action.nargs != 0


def _value_kind(action: argparse.Action) -> str:
    """``choices``, ``folder``, ``file`` or ``none`` (a value not completed: a number)."""
    if action.choices:
        return "choices"
    if set(action.option_strings) & _FOLDERS:
        return "folder"
    if set(action.option_strings) & _FILES:
        return "file"
    return "none"


# --- bash -----------------------------------------------------------------------------------
def bash_script(parser: argparse.ArgumentParser) -> str:
    """A bash completion function for ``acumen`` (``complete -F``)."""
    commands = _subcommands(parser)
    cases = []
    for name, sub in commands.items():
        flags = " ".join(s for a in _options(sub) for s in a.option_strings)
        values = []
        for action in _options(sub):
            if not _takes_value(action):
                continue
            pattern = "|".join(action.option_strings)
            kind = _value_kind(action)
            if kind == "choices":
                words = " ".join(map(str, action.choices or ()))
                reply = f'COMPREPLY=($(compgen -W "{words}" -- "$cur"))'
            elif kind == "folder":
                reply = 'COMPREPLY=($(compgen -d -- "$cur"))'
            elif kind == "file":
                reply = 'COMPREPLY=($(compgen -f -- "$cur"))'
            else:
                reply = "COMPREPLY=()"
            values.append(f"                {pattern}) {reply}; return 0;;")
        choices = [p for p in _positionals(sub) if p.choices]
        if choices:
            words = " ".join(map(str, choices[0].choices or ()))
            positional = f'COMPREPLY=($(compgen -W "{words}" -- "$cur"))'
        else:
            positional = 'COMPREPLY=($(compgen -f -- "$cur"))'  # dataset paths, configs
        cases.append(
            f"        {name})\n"
            f'            case "$prev" in\n{chr(10).join(values)}\n            esac\n'
            f'            if [[ "$cur" == -* ]]; then\n'
            f'                COMPREPLY=($(compgen -W "{flags}" -- "$cur"))\n'
            f"            else\n                {positional}\n            fi;;"
        )
    top = " ".join(s for a in _options(parser) for s in a.option_strings)
    return _BASH.format(commands=" ".join(commands), top=top, cases="\n".join(cases))


_BASH = """\
# bash completion for acumen: eval "$(acumen completion bash)" (e.g. in ~/.bashrc)
_acumen() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    local i command=""
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${{COMP_WORDS[i]}}" in
            -*) ;;
            *) command="${{COMP_WORDS[i]}}"; break;;
        esac
    done
    if [[ -z "$command" ]]; then
        if [[ "$cur" == -* ]]; then
            COMPREPLY=($(compgen -W "{top}" -- "$cur"))
        else
            COMPREPLY=($(compgen -W "{commands}" -- "$cur"))
        fi
        return 0
    fi
    case "$command" in
{cases}
    esac
}}
complete -o filenames -o bashdefault -F _acumen acumen
"""


# --- zsh ------------------------------------------------------------------------------------
def zsh_script(parser: argparse.ArgumentParser) -> str:
    """A zsh completion function for ``acumen`` (``compdef``)."""
    commands = _subcommands(parser)
    helps = _helps(parser)
    described = "\n".join(
        "        " + _quote(f"{name}:{_text(helps.get(name, ''))}") for name in commands
    )
    cases = []
    for name, sub in commands.items():
        specs = [_zsh_option(a) for a in _options(sub)]
        positionals = _positionals(sub)
        choices = [p for p in positionals if p.choices]
        if choices:
            specs.append(_quote(f"1:{choices[0].dest}:({' '.join(map(str, choices[0].choices))})"))
        elif positionals:
            specs.append(_quote("*:path:_files"))
        cases.append(f"        {name}) _arguments {' '.join(specs)};;")
    top = " ".join(_zsh_option(a) for a in _options(parser))
    return _ZSH.format(commands=described, top=top, cases="\n".join(cases))


def _zsh_option(action: argparse.Action) -> str:
    help_text = _text(action.help or "")
    names = action.option_strings
    spec = f"[{help_text}]"
    if _takes_value(action):
        kind = _value_kind(action)
        value = {
            "choices": f"({' '.join(map(str, action.choices or ()))})",
            "folder": "_files -/",
            "file": "_files",
            "none": " ",
        }[kind]
        spec += f":{(action.metavar or action.dest)}:{value}"
    if len(names) == 1:
        return _quote(names[0] + spec)
    exclusive = f"({' '.join(names)})"
    return _quote(exclusive) + "{" + ",".join(names) + "}" + _quote(spec)


def _text(help_text: str) -> str:
    """Help text that zsh's specs can hold: no brackets, colons or quotes; one clause."""
    text = help_text.replace("%%", "%").split(";")[0]
    text = re.sub(r"[\[\]:'\"`$\\]", "", text)
    return text if len(text) <= 70 else text[:67] + "..."


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


_ZSH = """\
#compdef acumen
# zsh completion for acumen: eval "$(acumen completion zsh)" (e.g. in ~/.zshrc, after compinit)
_acumen() {{
    local curcontext="$curcontext" state line
    local -a commands
    commands=(
{commands}
    )
    _arguments -C {top} '1: :->command' '*:: :->args' && return
    case $state in
        command) _describe -t commands 'acumen command' commands;;
        args)
            case $words[1] in
{cases}
            esac;;
    esac
}}
compdef _acumen acumen
"""
