using System;
using System.Collections.Generic;

namespace Daemon;

/// <summary>
/// How a daemon is run. Every command reads the same options, so an init script or a unit file
/// passes one command line to all of them. The command line sets them; a subclass may set them
/// in code before <see cref="DaemonBase.Main"/> runs.
/// </summary>
public sealed class DaemonOptions
{
    /// <summary>
    /// The pid file (<c>--pid-file</c>). Default: <c>/run/NAME.pid</c> as root, otherwise
    /// <c>$XDG_RUNTIME_DIR/NAME.pid</c>, or <c>~/.local/state/NAME/NAME.pid</c> when that is unset.
    /// <c>run</c> writes one only when it is set.
    /// </summary>
    public string? PidFile { get; set; }

    /// <summary>
    /// The log file that receives the daemon's standard output and error (<c>--log-file</c>).
    /// Default: <c>/var/log/NAME.log</c> as root, otherwise <c>~/.local/state/NAME/NAME.log</c>.
    /// <c>run</c> writes to its own standard streams unless it is set.
    /// </summary>
    public string? LogFile { get; set; }

    /// <summary>How long <c>stop</c> waits after SIGTERM (<c>--stop-timeout</c>). Default: 10 seconds.</summary>
    public TimeSpan StopTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How long <c>start</c> waits for the daemon to be ready (<c>--ready-timeout</c>); a daemon not
    /// ready by then is killed and <c>start</c> fails. Default: 30 seconds.
    /// </summary>
    public TimeSpan ReadyTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Whether <c>stop</c> sends SIGKILL when the stop timeout passes (<c>--force</c>). Default: false.</summary>
    public bool Force { get; set; }

    /// <summary>
    /// The file mode creation mask of the daemon (<c>--umask</c>, octal). Default: 022, so the
    /// files it creates are never writable by others.
    /// </summary>
    public int Umask { get; set; } = Convert.ToInt32("022", 8);

    /// <summary>The working directory of the daemon, so it holds no mount busy. Default: <c>/</c>.</summary>
    public string WorkingDirectory { get; set; } = "/";

    /// <summary>
    /// The user the daemon runs as after its startup hook (<c>--user</c>); only root may name
    /// another user. Default: none, the daemon keeps the caller's identity.
    /// </summary>
    public string? User { get; set; }

    /// <summary>
    /// The primary group the daemon runs as (<c>--group</c>). Default: the primary group of
    /// <see cref="User"/>, or the caller's.
    /// </summary>
    public string? Group { get; set; }

    /// <summary>
    /// Descriptors the daemon inherits from whoever ran <c>start</c> and keeps open, like
    /// python-daemon's <c>files_preserve</c>. Every other inherited descriptor is closed. Default: none.
    /// </summary>
    public IList<int> KeepDescriptors { get; } = new List<int>();
}
