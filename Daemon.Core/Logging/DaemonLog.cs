using System;
using System.Globalization;
using System.IO;
using System.Text;
using Daemon.Files;
using Daemon.Interop;

namespace Daemon.Logging;

/// <summary>
/// The daemon's log: its standard output and error appended to one file, and the framework's
/// lifecycle lines, timestamped (ISO 8601) and carrying the pid, with <c>warning: </c> or
/// <c>error: </c> after the pid for those severities (as postfix and sshd write theirs). Reopened
/// at its path on SIGHUP, so logrotate (create, or a plain mv) loses nothing. While the lines go
/// to a standard error that is the systemd journal (<c>run</c> under a unit, no log file), each
/// line starts with its sd-daemon(3) priority instead, and the journal adds time, name and pid.
/// </summary>
internal sealed class DaemonLog
{
    private readonly string _name;
    private readonly object _gate = new();
    private readonly Action<LogSeverity, string>? _observer;
    private readonly TextWriter? _lines;
    private string? _path;
    private FileStatus _logStatus;
    private bool _created;
    private volatile bool _journal;

    /// <param name="name">The daemon's name, on every line.</param>
    /// <param name="observer">Also receives each lifecycle line (a subclass's other logger).</param>
    /// <param name="lines">Where lines go instead of descriptor 2 (tests); null for descriptor 2.</param>
    /// <param name="journal">
    /// Whether the lines go to the journal; null: when they go to descriptor 2 and it is the stream
    /// JOURNAL_STREAM names.
    /// </param>
    public DaemonLog(string name, Action<LogSeverity, string>? observer = null, TextWriter? lines = null, bool? journal = null)
    {
        _lines = lines;
        _name = name;
        _observer = observer;
        _journal = journal ?? (lines is null && JournalStream.Is(Posix.StandardError));
        StartedOnJournal = _journal;
    }

    /// <summary>True when the lines went to the journal before a log file (if any) took descriptor 2 over.</summary>
    public bool StartedOnJournal { get; }

    /// <summary>The log file once it is open, or null while lines go to the process's own standard error.</summary>
    public string? Path => _path;

    /// <summary>
    /// Opens <paramref name="path"/> for appending and makes it descriptors 1 and 2, then writes
    /// <paramref name="firstLine"/> so that a full or read-only destination fails here, at start.
    /// </summary>
    /// <exception cref="DaemonException">The file cannot be opened or written.</exception>
    public void Open(string path, string firstLine)
    {
        RedirectStandardStreams(path);
        _path = path;
        _journal = false;
        // Console copied descriptors 1 and 2 at its first use; these writers follow whatever 1 and 2
        // are now, so a reopened log is picked up without touching Console again.
        Console.SetOut(DescriptorWriter.Create(Posix.StandardOutput));
        Console.SetError(DescriptorWriter.Create(Posix.StandardError));
        byte[] line = Encoding.UTF8.GetBytes(Format(LogSeverity.Information, firstLine));
        if (!Posix.WriteAll(Posix.StandardError, line, out int errno))
        {
            throw DaemonException.FromErrno($"cannot write log file {PathText.Quote(path)}", errno);
        }
    }

    /// <summary>Reopens the log at its path (after rotation); the old file gets nothing more.</summary>
    public void Reopen()
    {
        if (_path is not null)
        {
            RedirectStandardStreams(_path);
        }
    }

    /// <summary>
    /// Gives the log file to the user the daemon drops to, so it stays writable: only a file this
    /// daemon created, or one that user owns already. Anyone else's file (root's, say) is never
    /// handed over; the daemon keeps writing through the descriptor it has, and says so.
    /// </summary>
    public void GiveTo(uint uid, uint gid)
    {
        if (_path is null || _logStatus.Uid == uid)
        {
            return;
        }

        if (!_created)
        {
            Line(LogSeverity.Warning, $"log file {PathText.Quote(_path)} belongs to uid {_logStatus.Uid}, not to uid {uid}: left as it is, so reload cannot reopen it after rotation");
            return;
        }

        if (Posix.ChangeOwner(Posix.StandardError, uid, gid, out int errno) < 0)
        {
            throw DaemonException.FromErrno($"cannot hand log file {PathText.Quote(_path)} to uid {uid}", errno);
        }
    }

    /// <summary>Writes one timestamped lifecycle line of information.</summary>
    public void Line(string message) => Line(LogSeverity.Information, message);

    /// <summary>Writes one timestamped lifecycle line of the given severity.</summary>
    public void Line(LogSeverity severity, string message)
    {
        lock (_gate)
        {
            // Not Console.Error before Open: it dup()s 2 at first use, which fails out of descriptors.
            Lines.Write(Text(severity, message));
        }

        try
        {
            _observer?.Invoke(severity, message);
        }
        catch (Exception e)
        {
            // Another logger failing must not take the daemon down; the line is in the log.
            Lines.Write(Text(LogSeverity.Warning, $"log observer failed: {e.Message}"));
        }
    }

    private TextWriter Lines => _lines ?? DescriptorWriter.StandardError;

    /// <summary>
    /// Appends one lifecycle line, in the daemon's own format and with its pid, to the log at
    /// <paramref name="path"/>, for what the daemon cannot say itself (it was killed). A log that
    /// is missing or refused (a link, a fifo) gets nothing; this is never worth failing a command.
    /// </summary>
    public static void AppendFor(string path, string name, int pid, LogSeverity severity, string message)
    {
        if (GuardedFile.Open("log file", path, OpenFlags.O_WRONLY | OpenFlags.O_APPEND, 0, out int fd, out _, out _) is not null)
        {
            return;
        }

        try
        {
            _ = Posix.WriteAll(fd, Encoding.UTF8.GetBytes(Format(name, pid, severity, message)), out _);
        }
        finally
        {
            Posix.Close(fd);
        }
    }

    private string Format(LogSeverity severity, string message) => Format(_name, Environment.ProcessId, severity, message);

    private string Text(LogSeverity severity, string message) => _journal ? FormatForJournal(severity, message) : Format(severity, message);

    /// <summary>
    /// One entry for the journal: each of its lines (a stack trace's too) starts with the
    /// sd-daemon(3) priority of <paramref name="severity"/> and has no time, name or pid, which
    /// the journal records itself: <c>&lt;4&gt;warning: MESSAGE</c>.
    /// </summary>
    internal static string FormatForJournal(LogSeverity severity, string message)
    {
        string priority = Priority(severity);
        var text = new StringBuilder(message.Length + 16);
        string[] lines = message.Split('\n');
        int count = lines.Length > 1 && lines[^1].Length == 0 ? lines.Length - 1 : lines.Length;
        for (int i = 0; i < count; i++)
        {
            // The journal splits its stream at each newline, and reads a priority at the start of each line.
            text.Append(priority).Append(i == 0 ? Prefix(severity) : "").Append(lines[i].TrimEnd('\r')).Append('\n');
        }

        return text.ToString();
    }

    /// <summary>The sd-daemon(3) prefix of <paramref name="severity"/>: <c>&lt;3&gt;</c> (SD_ERR), <c>&lt;4&gt;</c> (SD_WARNING), <c>&lt;6&gt;</c> (SD_INFO).</summary>
    internal static string Priority(LogSeverity severity) => severity switch
    {
        LogSeverity.Error => "<3>",
        LogSeverity.Warning => "<4>",
        _ => "<6>",
    };

    /// <summary>One line of the log: <c>2026-11-24T09:32:58.528+00:00 NAME[PID]: warning: MESSAGE</c>.</summary>
    internal static string Format(string name, int pid, LogSeverity severity, string message)
    {
        string now = DateTimeOffset.Now.ToString("yyyy-MM-dd'T'HH:mm:ss.fffzzz", CultureInfo.InvariantCulture);
        return $"{now} {name}[{pid}]: {Prefix(severity)}{message}\n";
    }

    /// <summary>What a line of <paramref name="severity"/> says before its message: nothing for information.</summary>
    internal static string Prefix(LogSeverity severity) => severity switch
    {
        LogSeverity.Warning => "warning: ",
        LogSeverity.Error => "error: ",
        _ => "",
    };

    private void RedirectStandardStreams(string path)
    {
        int fd = OpenLogFile(path, out FileStatus status, out bool created);
        try
        {
            for (int target = Posix.StandardOutput; target <= Posix.StandardError; target++)
            {
                if (Posix.Dup2(fd, target, out int errno) < 0)
                {
                    throw DaemonException.FromErrno($"cannot redirect descriptor {target} to log file {PathText.Quote(path)}", errno);
                }
            }

            _logStatus = status;
            _created = created;
        }
        finally
        {
            Posix.Close(fd);
        }
    }

    /// <summary>
    /// Opens the log for appending as the pid file is opened: no symbolic link, no blocking on a
    /// fifo, a regular file with one link on a real file system. /dev/null is welcome as it is.
    /// </summary>
    private static int OpenLogFile(string path, out FileStatus status, out bool created)
    {
        const OpenFlags flags = OpenFlags.O_WRONLY | OpenFlags.O_APPEND | OpenFlags.O_CREAT;
        if (path == "/dev/null")
        {
            created = false;
            int devNull = Posix.Open(path, OpenFlags.O_WRONLY | OpenFlags.O_CLOEXEC | OpenFlags.O_NOCTTY, 0, out int errno);
            if (devNull < 0 || Posix.Fstat(devNull, out status, out errno) < 0)
            {
                throw DaemonException.FromErrno("cannot open log file /dev/null", errno);
            }

            return devNull;
        }

        string? problem = GuardedFile.Open("log file", path, flags, 0b110_100_000, out int fd, out status, out created);
        if (problem is not null)
        {
            throw new DaemonException(problem);
        }

        // Opened O_NONBLOCK so that a fifo could not hang us; a regular file's writes need no such flag.
        _ = Posix.SetNonBlocking(fd, false);
        return fd;
    }
}
