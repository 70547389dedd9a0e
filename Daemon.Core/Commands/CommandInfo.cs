using System;

namespace Daemon.Commands;

/// <summary>One command: the word that names it, its line in <c>--help</c>, and what carries it out.</summary>
internal sealed record CommandInfo(Command Command, string Word, string Summary, Func<DaemonBase, int> Run);
