//! Links to a Crazyflie. (Being written.)
