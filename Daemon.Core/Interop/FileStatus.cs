namespace Daemon.Interop;

/// <summary>The type bits of a file's mode (S_IFMT), as statx(2) gives them.</summary>
internal enum FileType
{
    Fifo = 0x1000,
    CharacterDevice = 0x2000,
    Directory = 0x4000,
    BlockDevice = 0x6000,
    RegularFile = 0x8000,
    SymbolicLink = 0xA000,
    Socket = 0xC000,
}

/// <summary>
/// What Daemon.Core needs to know of a file, from statx(2): which file it is, its type and mode,
/// its link count and owner. Filled by <see cref="Posix.Fstat"/> and <see cref="Posix.Lstat"/>.
/// </summary>
/// <param name="Device">The device the file lives on, as a dev_t (st_dev).</param>
/// <param name="Inode">The inode number (st_ino).</param>
/// <param name="Mode">The type and permission bits (st_mode).</param>
/// <param name="Links">The number of hard links (st_nlink).</param>
/// <param name="Uid">The owner (st_uid).</param>
/// <param name="Gid">The group (st_gid).</param>
internal readonly record struct FileStatus(ulong Device, ulong Inode, uint Mode, uint Links, uint Uid, uint Gid)
{
    private const uint TypeMask = 0xF000;

    /// <summary>The file's type, from its mode.</summary>
    public FileType Type => (FileType)(Mode & TypeMask);

    /// <summary>True when <paramref name="other"/> describes the same file (device and inode).</summary>
    public bool IsSameFile(in FileStatus other) => Device == other.Device && Inode == other.Inode;
}
