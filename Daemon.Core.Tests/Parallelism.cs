// Fixtures marked [Parallelizable(ParallelScope.Self)] run beside each other, three at a time (the
// CI machine has two cores, and these fixtures mostly wait: for daemons, for systemd in its sandbox,
// for a publish), their tests one after another. They are the long ones that only start
// processes in folders of their own and touch nothing of this process (descriptors, signals,
// environment): the template's pack and publish, the example's AOT publish, the reliability drills,
// the handovers, the hosted example. The rest keeps NUnit's default, one fixture at a time.
[assembly: LevelOfParallelism(3)]
