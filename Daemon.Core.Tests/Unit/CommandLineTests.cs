using Daemon.Commands;
using Daemon.Options;

namespace Daemon.Core.Tests.Unit;

[TestFixture]
public sealed class CommandLineTests
{
    private static (Command, DaemonOptions) Parse(params string[] args)
    {
        var owner = new ParsedDaemon();
        var set = new DaemonOptionSet();
        CommandLine.AddFrameworkOptions(set, owner);
        return (CommandLine.Parse(args, set, out _), owner.Options);
    }

    /// <summary>A daemon that is only parsed for: its system is never reached.</summary>
    private sealed class ParsedDaemon() : DaemonBase("t", new DaemonSystem(null!, null!, null!, TextWriter.Null, TextWriter.Null, isRoot: true, home: null));

    [Test]
    public void Parse_ReadsEveryFrameworkOption()
    {
        var (command, options) = Parse("stop", "--pid-file", "/a/b.pid", "--log-file=/a/b.log", "--stop-timeout", "2.5",
            "--force", "--ready-timeout", "9", "--user", "nobody", "--group", "nogroup", "--umask", "027");
        Assert.Multiple(() =>
        {
            Assert.That(command, Is.EqualTo(Command.Stop));
            Assert.That(options.PidFile, Is.EqualTo("/a/b.pid"));
            Assert.That(options.LogFile, Is.EqualTo("/a/b.log"));
            Assert.That(options.StopTimeout, Is.EqualTo(TimeSpan.FromSeconds(2.5)));
            Assert.That(options.Force, Is.True);
            Assert.That(options.ReadyTimeout, Is.EqualTo(TimeSpan.FromSeconds(9)));
            Assert.That(options.User, Is.EqualTo("nobody"));
            Assert.That(options.Group, Is.EqualTo("nogroup"));
            Assert.That(options.Umask, Is.EqualTo(Convert.ToInt32("027", 8)));
        });
    }

    [Test]
    public void Parse_MakesRelativePathsAbsolute_BeforeTheDaemonChangesDirectory()
    {
        var (_, options) = Parse("start", "--pid-file", "x.pid");
        Assert.That(options.PidFile, Is.EqualTo(System.IO.Path.Combine(Environment.CurrentDirectory, "x.pid")));
    }

    [Test]
    public void Defaults_AreStatedOnce()
    {
        var options = new DaemonOptions();
        Assert.Multiple(() =>
        {
            Assert.That(options.StopTimeout, Is.EqualTo(TimeSpan.FromSeconds(10)));
            Assert.That(options.Umask, Is.EqualTo(Convert.ToInt32("022", 8)));
            Assert.That(options.WorkingDirectory, Is.EqualTo("/"));
            Assert.That(options.Force, Is.False);
        });
    }

    [Test]
    public void Parse_NeverThrowsAnythingButUsage_ForRandomArguments()
    {
        string[] words = { "start", "stop", "run", "status", "--pid-file", "--log-file", "--force", "--stop-timeout", "--umask", "--user",
            "--help", "=", "--", "-", "--pid-file=", "1e9", "0", "-3", "NaN", "\0", "--force=1", "x", "999", "0777", "8" };
        var random = new Random(7);
        var watch = System.Diagnostics.Stopwatch.StartNew();
        for (int i = 0; i < 5_000; i++)
        {
            var args = new List<string>();
            int count = random.Next(0, 6);
            for (int j = 0; j < count; j++)
            {
                args.Add(random.Next(4) == 0 ? RandomText(random) : words[random.Next(words.Length)]);
            }

            try
            {
                Command command = Parse(args.ToArray()).Item1;
                Assert.That(Enum.IsDefined(command), Is.True);
            }
            catch (UsageException e)
            {
                Assert.That(e.Message, Is.Not.Empty.And.Not.Contain("\n"), string.Join(' ', args));
            }
        }

        Assert.That(watch.Elapsed, Is.LessThan(TimeSpan.FromSeconds(60)), "thousands of cases stay cheap: no parse that backtracks without end");
    }

    private static string RandomText(Random random)
    {
        var chars = new char[random.Next(0, 12)];
        for (int i = 0; i < chars.Length; i++)
        {
            chars[i] = (char)random.Next(0, 128);
        }

        return new string(chars);
    }
}
