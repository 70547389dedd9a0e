namespace Daemon.PidFiles;

/// <summary>The state of a pid file: its kind, the lock holder, the pid it names and its raw text.</summary>
/// <param name="Kind">What was found.</param>
/// <param name="Holder">The pid holding the write lock (the kernel's word), or 0.</param>
/// <param name="RecordedPid">The pid the file names, or null when its content is not a valid pid.</param>
/// <param name="Content">The file's content, quoted for messages.</param>
/// <param name="Problem">For <see cref="PidFileKind.Unusable"/>: why, as one line.</param>
/// <param name="Owner">The file's owner (uid), when it was looked at.</param>
internal readonly record struct PidFileState(PidFileKind Kind, int Holder, int? RecordedPid, string Content, string? Problem, uint? Owner = null)
{
    public static PidFileState Missing { get; } = new(PidFileKind.Missing, 0, null, "", null);

    public static PidFileState Unusable(string problem) => new(PidFileKind.Unusable, 0, null, "", problem);

    /// <summary>A daemon still starting: <paramref name="content"/>, quoted, is its pid, or empty (an older daemon's way).</summary>
    public static PidFileState Starting(int holder, string content = "\"\"") => new(PidFileKind.Starting, holder, null, content, null);

    /// <summary>True when the file names the process the kernel says holds its write lock: a daemon that is ready.</summary>
    public bool NamesItsHolder => Kind == PidFileKind.Locked && RecordedPid == Holder && Holder > 0;

    /// <summary>True when a live daemon holds the file, ready or still starting.</summary>
    public bool IsHeldByDaemon => NamesItsHolder || Kind == PidFileKind.Starting;
}
