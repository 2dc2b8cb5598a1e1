//! placeholder, replaced in this change
pub struct Heap;
pub struct MdlId;
pub struct NbId;
pub struct NblId;
