"""The interactive prompt (prompt_toolkit): history, completion of commands and symbols.

The prompt is WinDbg's ``0:000>`` (target : current thread).  History is kept in
``$BACKLINE_HOME/dbg_history``.  Ctrl-D or ``q`` ends the session.
"""

from __future__ import annotations

from typing import Iterable

from backline.debugger.session import Session, command_table


class _Completer:
    """Commands at the start of a line; ``module!function`` names after a ``!`` in an argument."""

    def __init__(self, session: Session):
        from prompt_toolkit.completion import Completer, Completion

        self.session = session
        outer = self

        class C(Completer):
            def get_completions(self, document, complete_event) -> Iterable[Completion]:
                text = document.text_before_cursor
                word = text.split(" ")[-1]
                if " " not in text.strip() and not text.endswith(" "):
                    names = list(command_table()) + list(outer.session.extra)
                    for n in sorted(names):
                        if n.startswith(word):
                            yield Completion(n, start_position=-len(word))
                    return
                if "!" in word:
                    mod, _, fn = word.partition("!")
                    for hit in outer.session.target.symbols_matching(f"{mod}!{fn}*")[:200]:
                        yield Completion(f"{mod}!{hit.name}", start_position=-len(word))
                elif word:
                    for m in outer.session.target.modules:
                        stem = m.name.rsplit(".", 1)[0]
                        if stem.lower().startswith(word.lower()):
                            yield Completion(stem + "!", start_position=-len(word))

        self.completer = C()


def interactive(session: Session) -> None:
    from prompt_toolkit import PromptSession
    from prompt_toolkit.history import FileHistory
    from rich.console import Console
    from rich.markup import escape

    from backline.config import data_dir

    console = Console(highlight=False)
    t = session.target
    console.print(f"[bold]{escape(t.name)}[/] ({t.kind}, {t.cpu}), {len(t.threads)} thread(s), "
                  f"{len(t.modules)} module(s).  .help lists the commands, q quits.")
    try:
        home = data_dir()
        home.mkdir(parents=True, exist_ok=True)
        history = FileHistory(str(home / "dbg_history"))
    except OSError:
        history = None
    prompt = PromptSession(history=history, completer=_Completer(session).completer, complete_while_typing=False)
    while True:
        try:
            line = prompt.prompt(f"{session.current}:{session.thread_index:03d}> ")
        except KeyboardInterrupt:
            continue
        except EOFError:
            break
        done = False
        for r in session.execute(line):
            if r.error:
                console.print(f"[red]{escape(r.error)}[/]")
            elif r.text:
                console.print(escape(r.text), soft_wrap=True)
            if r.quit:
                done = True
        if done:
            break
