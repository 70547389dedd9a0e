using System;

namespace Daemon.Options;

/// <summary>A command line that cannot be understood: usage error, exit 2.</summary>
/// <param name="message">What was wrong, as one line.</param>
/// <param name="showCommands">True when the command itself is missing or unknown: the usage line with the commands helps.</param>
internal sealed class UsageException(string message, bool showCommands = false) : Exception(message)
{
    /// <summary>True when the usage line with the commands should follow the message.</summary>
    public bool ShowCommands { get; } = showCommands;
}
