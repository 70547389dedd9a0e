using Daemon.Interop;

namespace Daemon.Files;

/// <summary>
/// Opens the files a daemon writes as root (its pid file and its log) so that whoever can write
/// in their folders cannot aim them elsewhere: no symbolic link is followed, a fifo never blocks,
/// only a regular file with one link is accepted, and never one on a kernel pseudo file system.
/// </summary>
internal static class GuardedFile
{
    private static readonly OpenFlags _safeFlags = Posix.O_NOFOLLOW | OpenFlags.O_NONBLOCK | OpenFlags.O_CLOEXEC | OpenFlags.O_NOCTTY;

    /// <summary>
    /// Opens <paramref name="path"/> (<paramref name="what"/> names it in messages, "pid file").
    /// With O_CREAT, <paramref name="created"/> says whether this call made the file.
    /// Returns null on success, "" when nothing is at the path and O_CREAT was not asked,
    /// otherwise the problem as one line; <paramref name="fd"/> is then -1.
    /// </summary>
    public static string? Open(string what, string path, OpenFlags flags, uint mode, out int fd, out FileStatus status, out bool created)
    {
        status = default;
        created = false;
        string shown = PathText.Quote(path);
        int errno = 0;
        fd = -1;
        bool create = (flags & OpenFlags.O_CREAT) != 0;
        for (int attempt = 0; attempt < 5 && fd < 0; attempt++)
        {
            // O_EXCL first, so "created" is the kernel's word; an existing file is opened as it is.
            if (create)
            {
                fd = Posix.Open(path, flags | OpenFlags.O_EXCL | _safeFlags, mode, out errno);
                created = fd >= 0;
                if (fd >= 0 || errno != Errno.EEXIST)
                {
                    break;
                }
            }

            // Removed between the two tries: create it after all.
            fd = Posix.Open(path, (flags & ~OpenFlags.O_CREAT) | _safeFlags, mode, out errno);
            if (fd >= 0 || !create || errno != Errno.ENOENT)
            {
                break;
            }
        }

        if (fd < 0)
        {
            return errno switch
            {
                Errno.ENOENT when !create => "",
                Errno.ENOENT => MissingFolder(what, path),
                Errno.ELOOP => $"{what} {shown} is a symbolic link; refusing to follow it",
                Errno.EISDIR => $"{what} {shown} is a directory",
                Errno.ENXIO => $"{what} {shown} is not a regular file",
                _ => DaemonException.FromErrno($"cannot open {what} {shown}", errno).Message,
            };
        }

        string? problem = Check(what, shown, fd, out status);
        if (problem is not null)
        {
            Posix.Close(fd);
            fd = -1;
        }

        return problem;
    }

    /// <summary>
    /// What to do when the folder of a file to create does not exist, in one line: create it for the
    /// user who runs the command (who creates the file), or name another file.
    /// </summary>
    private static string MissingFolder(string what, string path)
    {
        string folder = PathText.Quote(System.IO.Path.GetDirectoryName(path) ?? "/");
        string owner = Posix.GetEffectiveUid() == 0 ? "" : $"-o {System.Environment.UserName} ";
        string option = what == "log file" ? "--log-file" : "--pid-file";
        return $"cannot create {what} {PathText.Quote(path)}: the folder {folder} does not exist; create it (install -d {owner}{folder}) or pass another {option}";
    }

    /// <summary>True when <paramref name="path"/> still names the inode <paramref name="opened"/> describes.</summary>
    public static bool PathStillNames(string path, in FileStatus opened) =>
        Posix.Lstat(path, out FileStatus now, out _) == 0 && now.IsSameFile(opened);

    private static string? Check(string what, string shown, int fd, out FileStatus status)
    {
        if (Posix.Fstat(fd, out status, out int errno) < 0)
        {
            return DaemonException.FromErrno($"cannot stat {what} {shown}", errno).Message;
        }

        if (status.Type != FileType.RegularFile)
        {
            return status.Type == FileType.Directory ? $"{what} {shown} is a directory" : $"{what} {shown} is not a regular file";
        }

        if (status.Links > 1)
        {
            // A hard link made by someone who can write in the folder would aim root's writes at its twin.
            return $"{what} {shown} has {status.Links} hard links; refusing to use it";
        }

        if (Posix.FileSystemType(fd, out long fsType, out errno) < 0)
        {
            return DaemonException.FromErrno($"cannot tell the file system of {what} {shown}", errno).Message;
        }

        return PseudoFileSystem(fsType) is { } name ? $"{what} {shown} is on {name}, not a real file system; refusing to write it" : null;
    }

    /// <summary>The name of a kernel file system whose files are settings or views, not storage.</summary>
    private static string? PseudoFileSystem(long magic) => magic switch
    {
        0x9fa0 => "proc",
        0x62656572 => "sysfs",
        0x27e0eb or 0x63677270 => "cgroupfs",
        0x64626720 => "debugfs",
        0x74726163 => "tracefs",
        0x73636673 => "securityfs",
        0x62656570 => "configfs",
        0xcafe4a11 => "bpffs",
        0xde5e81e4 => "efivarfs",
        _ => null,
    };
}
